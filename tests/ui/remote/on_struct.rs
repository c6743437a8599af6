#[raykit::remote]
struct Counter {
    value: u64,
}

#[raykit::remote]
impl Counter {
    fn value(&self) -> u64 {
        self.value
    }
}

#[raykit::remote]
const LIMIT: u32 = 3;

fn main() {}
