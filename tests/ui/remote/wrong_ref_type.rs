use raykit::ObjectRef;

#[raykit::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[raykit::remote]
fn greet() -> String {
    "hi".to_string()
}

fn main() {
    let s: ObjectRef<String> = greet::remote();
    let _ = add::remote(&s, 1);
    let _ = add::remote(1, s);
}
