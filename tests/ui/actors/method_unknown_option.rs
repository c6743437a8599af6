#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

/// Only `num_returns` is an option of `#[raykit::method]`, written in parentheses, once.
#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    #[raykit::method(num_return = 2)]
    pub fn misspelled(&self) -> (u64, u64) {
        (self.value, 1)
    }
    #[raykit::method(max_concurrency = 2, num_returns = 2)]
    pub fn not_a_method_option(&self) -> (u64, u64) {
        (self.value, 1)
    }
    #[raykit::method = 2]
    pub fn not_a_list(&self) -> (u64, u64) {
        (self.value, 1)
    }
    #[raykit::method(num_returns = "2")]
    pub fn not_a_number(&self) -> (u64, u64) {
        (self.value, 1)
    }
    #[raykit::method(num_returns = 2)]
    #[raykit::method(num_returns = 2)]
    pub fn twice(&self) -> (u64, u64) {
        (self.value, 1)
    }
}

fn main() {}
