#[raykit::remote]
fn sum(v: &Vec<i64>) -> i64 {
    v.iter().sum()
}

#[raykit::remote]
fn first(v: Vec<String>) -> &'static str {
    let _ = v;
    "first"
}

fn main() {}
