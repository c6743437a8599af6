#[raykit::remote(num_returns = 2)]
fn one() -> Vec<i64> {
    vec![1, 2]
}

#[raykit::remote(num_returns = 2)]
fn three() -> (i64, i64, i64) {
    (1, 2, 3)
}

#[raykit::remote(num_returns = 2)]
fn nothing() {}

#[raykit::remote(num_returns = 9)]
fn nine() -> (u8, u8, u8, u8, u8, u8, u8, u8, u8) {
    (1, 2, 3, 4, 5, 6, 7, 8, 9)
}

fn main() {}
