#[derive(raykit::Actor)]
#[actor(num_cpus = "two", max_concurrency = 0, max_restarts = 1.5, num_gpus)]
struct Counter {
    value: u64,
}

#[derive(raykit::Actor)]
#[actor(resources = 1, max_restarts = -1, num_cpus = N)]
struct Gauge {
    value: u64,
}

#[derive(raykit::Actor)]
#[actor]
struct Meter {
    value: u64,
}

#[derive(raykit::Actor)]
#[actor = "max_concurrency = 2"]
struct Timer {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
}

#[raykit::actor]
impl Gauge {
    pub fn new() -> Self {
        Gauge { value: 0 }
    }
}

#[raykit::actor]
impl Meter {
    pub fn new() -> Self {
        Meter { value: 0 }
    }
}

#[raykit::actor]
impl Timer {
    pub fn new() -> Self {
        Timer { value: 0 }
    }
}

fn main() {}
