struct Counter {
    value: i64,
}

impl Counter {
    #[raykit::remote]
    fn value(&self) -> i64 {
        self.value
    }
}

fn main() {}
