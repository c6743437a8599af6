use std::rc::Rc;

#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    pub async fn slow(&self) -> u64 {
        let local = Rc::new(self.value);
        std::future::ready(()).await;
        *local
    }
}

fn main() {}
