#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor(max_concurrency = 2)]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
}

fn main() {}
