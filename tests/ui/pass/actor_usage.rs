//! Everything an actor may be and a caller may write: enums, private helpers (even taking
//! `self`), associated functions, `pub(crate)` methods, patterns, `Self` in types, async
//! methods, refs and handles as arguments and returns, `#[raykit::method]` (imported too) with
//! several outputs, one, or no options.
use raykit::{method, ActorHandle, ActorOptions, ObjectRef};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(raykit::Actor, Serialize, Deserialize)]
#[actor(max_concurrency = 4)]
pub struct Board {
    points: Vec<Point>,
}

#[raykit::actor]
impl Board {
    /// The constructor may return `Board` as well as `Self`.
    pub fn new(points: Vec<Point>) -> Board {
        Board { points }
    }
    pub fn add(&mut self, Point { x, y }: Point, _: ()) -> usize {
        self.points.push(Point { x, y });
        self.points.len()
    }
    pub(crate) fn len(&self) -> usize {
        self.count()
    }
    pub async fn sum(&self) -> f64 {
        self.points.iter().map(|p| p.x + p.y).sum()
    }
    pub async fn clear(&mut self) {
        self.points.clear();
    }
    /// An associated function is not a method: it stays on the type.
    pub fn origin() -> Point {
        Point { x: 0.0, y: 0.0 }
    }
    /// A receiver written out, and a lifetime parameter that no argument type uses.
    pub fn first_x<'a>(self: &'a Self) -> Option<f64> {
        self.points.first().map(|p| p.x)
    }
    fn count(&self) -> usize {
        self.id()
    }
    /// A private helper may use a name the handle has: it is not on the handle.
    fn id(&self) -> usize {
        self.points.len()
    }
    #[allow(dead_code)]
    fn into_points(self) -> Vec<Point> {
        self.points
    }
    /// The macro imported by name, and `Self` among the outputs.
    #[method(num_returns = 2)]
    pub fn snapshot(&self) -> (Self, usize) {
        let points = self.points.clone();
        (Board { points }, self.points.len())
    }
    /// With no options, or one output, a tuple is one object, as without the attribute.
    #[raykit::method]
    pub fn corner(&self) -> (f64, f64) {
        (0.0, 0.0)
    }
    #[raykit::method(num_returns = 1)]
    pub async fn lens(&self) -> (usize, usize) {
        (self.points.len(), self.points.len())
    }
}

#[derive(raykit::Actor)]
pub enum Light {
    On,
    Off,
}

#[raykit::actor]
impl Light {
    pub fn new(on: bool) -> Self {
        if on {
            Light::On
        } else {
            Light::Off
        }
    }
    pub fn toggle(&mut self) -> bool {
        *self = match self {
            Light::On => Light::Off,
            Light::Off => Light::On,
        };
        matches!(self, Light::On)
    }
    /// Handles travel as arguments and returns.
    pub fn pair(&self, board: ActorHandle<Board>) -> ActorHandle<Board> {
        board
    }
}

#[raykit::remote]
fn board_len(board: ActorHandle<Board>) -> usize {
    raykit::get(&board.len()).unwrap()
}

fn main() {
    let board = Board::remote(vec![Board::origin()]);
    let p: ObjectRef<Point> = raykit::put(Point { x: 1.0, y: 2.0 });
    let _n: ObjectRef<usize> = board.add(&p, ());
    let _m = board.add(p, ());
    let _s: ObjectRef<f64> = board.sum();
    let _c: ObjectRef<()> = board.clear();
    let _x: ObjectRef<Option<f64>> = board.first_x();
    let light = Light::options(ActorOptions::new().num_cpus(0.5)).remote(true);
    let _t: ObjectRef<bool> = light.toggle();
    let _b: ObjectRef<ActorHandle<Board>> = light.pair(board.clone());
    let _l = board_len::remote(board.clone());
    let _same: ActorHandle<Board> = board.clone();
    let (_snap, _len): (ObjectRef<Board>, ObjectRef<usize>) = board.snapshot();
    let _corner: ObjectRef<(f64, f64)> = board.corner();
    let _lens: ObjectRef<(usize, usize)> = board.lens();
}
