use raykit::ObjectRef;

#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new(start: u64) -> Self {
        Counter { value: start }
    }
    pub fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }
}

fn main() {
    let counter = Counter::remote("zero");
    let _ = counter.incr("five");
    let small: ObjectRef<u32> = raykit::put(5u32);
    let _ = counter.incr(&small);
    let _ = counter.incr();
    let _ = counter.incr(1, 2);
}
