use std::borrow::Cow;

#[raykit::remote]
fn join(words: Vec<&str>) -> String {
    words.join(" ")
}

#[raykit::remote]
fn shout(s: Cow<str>) -> String {
    s.to_uppercase()
}

#[raykit::remote]
fn show(items: Vec<impl std::fmt::Display>) -> usize {
    items.len()
}

fn main() {}
