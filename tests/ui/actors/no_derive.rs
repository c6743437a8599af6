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
}

fn main() {}
