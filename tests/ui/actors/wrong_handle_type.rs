use raykit::ActorHandle;

#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
    pub fn value(&self) -> u64 {
        self.value
    }
}

#[derive(raykit::Actor)]
struct Gauge {
    value: u64,
}

#[raykit::actor]
impl Gauge {
    pub fn new() -> Self {
        Gauge { value: 0 }
    }
    pub fn value(&self) -> u64 {
        self.value
    }
}

fn read(counter: &ActorHandle<Counter>) -> u64 {
    raykit::get(&counter.value()).unwrap()
}

#[raykit::remote]
fn read_remote(counter: ActorHandle<Counter>) -> u64 {
    raykit::get(&counter.value()).unwrap()
}

fn main() {
    let gauge = Gauge::remote();
    let _ = read(&gauge);
    let _ = read_remote::remote(gauge.clone());
    let _counter: ActorHandle<Counter> = gauge;
}
