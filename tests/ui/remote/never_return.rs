#[raykit::remote]
fn serve_forever(port: u16) -> ! {
    let _ = port;
    loop {}
}

fn main() {}
