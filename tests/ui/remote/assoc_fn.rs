struct Math;

impl Math {
    #[raykit::remote]
    fn double(x: i64) -> i64 {
        x * 2
    }
}

fn main() {}
