#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub async fn new(start: u64) -> Self {
        Counter { value: start }
    }
}

fn main() {}
