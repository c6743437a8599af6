#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn create(start: u64) -> Self {
        Counter { value: start }
    }
    pub fn value(&self) -> u64 {
        self.value
    }
}

fn main() {}
