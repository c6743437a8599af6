#[raykit::remote]
fn identity<T: Clone>(v: T) -> T {
    v
}

#[raykit::remote]
fn first<'a>(v: Vec<&'a str>) -> usize {
    v.len()
}

#[raykit::remote]
fn bounded() -> i64
where
    i64: Copy,
{
    1
}

fn main() {}
