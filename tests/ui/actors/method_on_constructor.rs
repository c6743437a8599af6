#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

/// The constructor returns the actor's handle: it has no outputs to split.
#[raykit::actor]
impl Counter {
    #[raykit::method(num_returns = 2)]
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    pub fn value(&self) -> u64 {
        self.value
    }
}

fn main() {}
