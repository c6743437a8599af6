#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    pub unsafe fn value(&self) -> u64 {
        self.value
    }
}

#[derive(raykit::Actor)]
struct Gauge {
    value: u64,
}

#[raykit::actor]
impl Gauge {
    pub unsafe fn new() -> Self {
        Gauge { value: 0 }
    }
}

fn main() {}
