#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

/// `num_returns` must agree with the method's return type, and be 1 to 8.
#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    #[raykit::method(num_returns = 0)]
    pub fn zero(&self) -> (u64, u64) {
        (self.value, 1)
    }
    #[raykit::method(num_returns = 9)]
    pub fn nine(&self) -> (u8, u8, u8, u8, u8, u8, u8, u8, u8) {
        (1, 2, 3, 4, 5, 6, 7, 8, 9)
    }
    #[raykit::method(num_returns = 2)]
    pub fn not_a_tuple(&self) -> Vec<u64> {
        vec![self.value, 1]
    }
    #[raykit::method(num_returns = 3)]
    pub async fn too_short(&mut self) -> (u64, u64) {
        (self.value, 1)
    }
    #[raykit::method(num_returns = 2)]
    pub fn nothing(&mut self) {
        self.value += 1;
    }
}

fn main() {}
