#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

/// `#[method]` names the attribute as any other path: without `use raykit::method` it is not
/// found (write `#[raykit::method]`).
#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    #[method(num_returns = 2)]
    pub fn pair(&self) -> (u64, u64) {
        (self.value, 1)
    }
}

fn main() {
    let (_a, _b) = Counter::remote().pair();
}
