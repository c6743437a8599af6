struct Tensor {
    data: Vec<f32>,
}

#[raykit::remote]
fn norm(t: Tensor) -> f32 {
    t.data.iter().map(|x| x * x).sum()
}

fn main() {}
