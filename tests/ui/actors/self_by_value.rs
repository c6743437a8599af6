#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    pub fn into_value(self) -> u64 {
        self.value
    }
    pub fn boxed(self: Box<Self>) -> u64 {
        self.value
    }
    /// Private helpers may take `self`: they are not part of the handle.
    fn take(self) -> u64 {
        self.value
    }
}

fn main() {}
