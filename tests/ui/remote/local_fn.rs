fn main() {
    #[raykit::remote]
    fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    let _ = add::remote(1, 2);
}
