//! A first end-to-end check of actors.
use raykit::ActorHandle;

raykit_tests::suite!(Shape::machine());

#[derive(raykit::Actor)]
#[actor(max_concurrency = 1)]
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
    pub fn value(&self) -> u64 {
        self.value
    }
    pub async fn slow(&self) -> u64 {
        self.value * 2
    }
}

#[test]
fn actor_smoke() -> raykit::Result<()> {
    init();
    let c: ActorHandle<Counter> = Counter::remote(0);
    for _ in 0..100 {
        c.incr(1);
    }
    assert_eq!(raykit::get(&c.value())?, 100);
    assert_eq!(raykit::get(&c.slow())?, 200);
    let named = Counter::options(raykit::ActorOptions::new().name("hits")).remote(7);
    let same: ActorHandle<Counter> = raykit::get_actor("hits")?;
    same.incr(1);
    assert_eq!(raykit::get(&named.value())?, 8);
    named.kill();
    assert!(raykit::get(&same.value()).is_err());
    Ok(())
}
