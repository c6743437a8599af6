#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new(start: u64) -> Option<Self> {
        Some(Counter { value: start })
    }
}

#[derive(raykit::Actor)]
struct Gauge {
    value: u64,
}

#[raykit::actor]
impl Gauge {
    pub fn new(value: u64) -> u64 {
        value
    }
}

#[derive(raykit::Actor)]
struct Meter {
    value: u64,
}

#[raykit::actor]
impl Meter {
    pub fn new(value: u64) {
        let _ = Meter { value };
    }
}

fn main() {}
