use raykit::ActorHandle;

struct Plain {
    value: u64,
}

fn main() {
    let _ = Plain { value: 0 }.value;
    let _: raykit::Result<ActorHandle<Plain>> = raykit::get_actor("plain");
}
