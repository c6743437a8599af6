#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    pub fn remote(&self) -> u64 {
        self.value
    }
    pub fn options(&self) -> u64 {
        self.value
    }
    pub fn kill(&mut self) {
        self.value = 0;
    }
    pub fn id(&self) -> u64 {
        self.value
    }
    pub fn clone(&self) -> u64 {
        self.value
    }
    pub fn eq(&self, other: u64) -> bool {
        self.value == other
    }
    pub fn into(&self) -> u64 {
        self.value
    }
}

#[derive(raykit::Actor)]
struct Gauge {
    value: u64,
}

#[raykit::actor]
impl Gauge {
    pub fn new() -> Self {
        Gauge { value: 0 }
    }
    /// An associated function or a private method clashes with `Gauge::remote` too.
    pub fn remote() -> u64 {
        0
    }
    fn options(&self) -> u64 {
        self.value
    }
}

fn main() {}
