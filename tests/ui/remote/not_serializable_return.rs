struct Tensor {
    data: Vec<f32>,
}

#[raykit::remote]
fn zeros(n: usize) -> Tensor {
    Tensor { data: vec![0.0; n] }
}

fn main() {}
