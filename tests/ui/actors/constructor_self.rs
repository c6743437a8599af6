#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new(&self) -> Self {
        Counter { value: self.value }
    }
}

fn main() {}
