/// `#[raykit::method]` is read by `#[raykit::actor]`: anywhere else it is an error.
#[raykit::method(num_returns = 2)]
fn free_function() -> (u64, u64) {
    (1, 2)
}

struct Plain {
    value: u64,
}

impl Plain {
    #[raykit::method(num_returns = 2)]
    pub fn in_a_plain_impl(&self) -> (u64, u64) {
        (self.value, 1)
    }
}

#[raykit::method]
impl Plain {
    pub fn on_the_block(&self) -> u64 {
        self.value
    }
}

fn main() {
    let _ = free_function();
    let p = Plain { value: 1 };
    let _ = p.in_a_plain_impl();
    let _ = p.on_the_block();
}
