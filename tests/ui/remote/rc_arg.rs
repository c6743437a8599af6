use std::rc::Rc;

#[raykit::remote]
fn len(v: Rc<Vec<i64>>) -> usize {
    v.len()
}

fn main() {}
