#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new<T: Into<u64>>(start: T) -> Self {
        Counter {
            value: start.into(),
        }
    }
}

fn main() {}
