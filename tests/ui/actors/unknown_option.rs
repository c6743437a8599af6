#[derive(raykit::Actor)]
#[actor(max_concurency = 2)]
struct Counter {
    value: u64,
}

/// A bad option is reported once: the impl block still expands.
#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    pub fn value(&self) -> u64 {
        self.value
    }
}

#[derive(raykit::Actor)]
#[actor(max_retries = 2, name = "gauge")]
struct Gauge {
    value: u64,
}

#[raykit::actor]
impl Gauge {
    pub fn new() -> Self {
        Gauge { value: 0 }
    }
}

fn main() {
    let _ = Counter::remote().value();
}
