use std::rc::Rc;

#[derive(raykit::Actor)]
struct Model {
    weights: Vec<f32>,
}

#[raykit::actor]
impl Model {
    pub fn new(weights: Rc<Vec<f32>>) -> Self {
        Model {
            weights: weights.to_vec(),
        }
    }
}

fn main() {}
