//! The actor macros' expansion names only absolute paths: it compiles in a crate without any
//! prelude.
#![no_implicit_prelude]

#[derive(::raykit::Actor)]
#[actor(
    max_restarts = 1,
    max_concurrency = 2,
    num_cpus = 0.5,
    num_gpus = 0,
    resources(custom = 1)
)]
struct Counter {
    value: u64,
    log: ::std::vec::Vec<::std::string::String>,
}

#[::raykit::actor]
impl Counter {
    pub fn new(start: u64) -> Self {
        Counter {
            value: start,
            log: ::std::vec::Vec::new(),
        }
    }
    pub fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }
    pub fn value(&self) -> u64 {
        self.value
    }
    pub fn note(&mut self, line: ::std::string::String) {
        self.log.push(line);
    }
    pub fn log(&self) -> ::std::vec::Vec<::std::string::String> {
        ::core::clone::Clone::clone(&self.log)
    }
    pub async fn slow(&self) -> u64 {
        self.value
    }
    pub async fn reset(&mut self) -> ::core::option::Option<u64> {
        self.value = 0;
        ::core::option::Option::None
    }
    #[::raykit::method(num_returns = 2)]
    pub fn both(&self) -> (u64, ::std::vec::Vec<::std::string::String>) {
        (self.value, ::core::clone::Clone::clone(&self.log))
    }
    #[::raykit::method(num_returns = 3)]
    pub async fn three(&mut self) -> (u64, u64, ::std::vec::Vec<u8>) {
        (self.value, 1, ::std::vec::Vec::new())
    }
}

fn main() {
    let c: ::raykit::ActorHandle<Counter> = Counter::remote(0);
    let a = c.incr(1);
    let _b = c.incr(&a);
    let _c = c.incr(a);
    let _v: ::raykit::ObjectRef<u64> = c.value();
    let _n: ::raykit::ObjectRef<()> = c.note(::std::string::ToString::to_string("x"));
    let _l = c.log();
    let _s = c.slow();
    let _r = c.reset();
    let (_v, _l): (
        ::raykit::ObjectRef<u64>,
        ::raykit::ObjectRef<::std::vec::Vec<::std::string::String>>,
    ) = c.both();
    let (_a, _b, _c): (
        ::raykit::ObjectRef<u64>,
        ::raykit::ObjectRef<u64>,
        ::raykit::ObjectRef<::std::vec::Vec<u8>>,
    ) = c.three();
    let named = Counter::options(::raykit::ActorOptions::new().name("n")).remote(1);
    let _same = ::core::clone::Clone::clone(&named);
    named.kill();
    let _id = c.id();
}
