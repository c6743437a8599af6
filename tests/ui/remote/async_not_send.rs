use std::rc::Rc;

async fn tick() {}

#[raykit::remote]
async fn hold_rc(x: i64) -> i64 {
    let local = Rc::new(x);
    tick().await;
    *local
}

fn main() {}
