#[raykit::actor]
struct Counter {
    value: u64,
}

#[raykit::actor]
fn count() -> u64 {
    0
}

fn main() {
    let _ = Counter { value: 0 }.value;
}
