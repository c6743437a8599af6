#[raykit::remote]
unsafe fn raw(p: usize) -> usize {
    p
}

#[raykit::remote]
const fn answer() -> i64 {
    42
}

#[raykit::remote]
extern "C" fn ffi(x: i64) -> i64 {
    x
}

fn main() {}
