#[raykit::remote]
fn show(v: impl std::fmt::Display) -> String {
    v.to_string()
}

#[raykit::remote]
fn numbers() -> impl Iterator<Item = i64> {
    0..10
}

fn main() {}
