#[derive(raykit::Actor)]
struct Holder<T> {
    value: T,
}

#[raykit::actor]
impl<T: Send + Sync + 'static> Holder<T> {
    pub fn new(value: T) -> Self {
        Holder { value }
    }
}

#[derive(raykit::Actor)]
struct View<'a> {
    text: &'a str,
}

fn main() {
    let _ = View { text: "" }.text;
}
