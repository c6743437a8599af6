#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Default for Counter {
    fn default() -> Self {
        Counter { value: 0 }
    }
}

fn main() {}
