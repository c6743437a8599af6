#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    pub fn value(&self) -> u64 {
        self.value
    }
    fn reset_value(&mut self) {
        self.value = 0;
    }
}

fn main() {
    let counter = Counter::remote();
    let _ = counter.decr(1);
    let _ = counter.reset_value();
}
