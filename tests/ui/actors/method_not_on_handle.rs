#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

/// `#[raykit::method]` only means something on a method the handle calls.
#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    #[raykit::method(num_returns = 2)]
    fn private_helper(&self) -> (u64, u64) {
        (self.value, 1)
    }
    #[raykit::method(num_returns = 2)]
    pub fn associated() -> (u64, u64) {
        (0, 1)
    }
    pub fn value(&self) -> u64 {
        self.private_helper().0
    }
}

fn main() {}
