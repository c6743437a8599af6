#[derive(raykit::Actor)]
struct Store {
    items: Vec<String>,
}

#[raykit::actor]
impl Store {
    pub fn new() -> Self {
        Store { items: Vec::new() }
    }
    pub fn push<T: ToString>(&mut self, item: T) {
        self.items.push(item.to_string());
    }
    pub fn extend(&mut self, items: impl IntoIterator<Item = String>) {
        self.items.extend(items);
    }
    pub fn parse<T>(&self) -> Vec<T>
    where
        T: std::str::FromStr,
    {
        self.items.iter().filter_map(|s| s.parse().ok()).collect()
    }
}

fn main() {}
