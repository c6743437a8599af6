#[derive(raykit::Actor)]
struct Log {
    lines: Vec<String>,
}

#[raykit::actor]
impl Log {
    pub fn new(first: &str) -> Self {
        Log {
            lines: vec![first.to_string()],
        }
    }
    pub fn push(&mut self, line: &str) {
        self.lines.push(line.to_string());
    }
    pub fn drain_into(&mut self, out: &mut Vec<String>) {
        out.append(&mut self.lines);
    }
    pub fn last(&self) -> &str {
        self.lines.last().map_or("", |s| s.as_str())
    }
    pub fn all<'a>(&'a self, into: Vec<&'a str>) -> Vec<&'a str> {
        let _ = into;
        self.lines.iter().map(|s| s.as_str()).collect()
    }
}

fn main() {}
