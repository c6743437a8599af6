#[raykit::remote]
enum Shape {
    Circle(f64),
}

#[raykit::remote]
pub trait Area {
    fn area(&self) -> f64;
}

#[raykit::remote]
impl Area for Shape {
    fn area(&self) -> f64 {
        0.0
    }
}

fn main() {}
