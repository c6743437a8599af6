use std::cell::Cell;
use std::rc::Rc;

#[derive(raykit::Actor)]
struct Shared {
    value: Rc<u64>,
}

#[raykit::actor]
impl Shared {
    pub fn new() -> Self {
        Shared { value: Rc::new(0) }
    }
}

#[derive(raykit::Actor)]
struct Counter {
    hits: Cell<u64>,
}

#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { hits: Cell::new(0) }
    }
}

fn main() {}
