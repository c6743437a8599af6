struct Tensor {
    data: Vec<f32>,
}

#[derive(raykit::Actor)]
struct Model {
    weights: Vec<f32>,
}

#[raykit::actor]
impl Model {
    pub fn new() -> Self {
        Model {
            weights: Vec::new(),
        }
    }
    pub fn load(&mut self, t: Tensor) {
        self.weights = t.data;
    }
    pub fn weights(&self) -> Tensor {
        Tensor {
            data: self.weights.clone(),
        }
    }
}

fn main() {}
