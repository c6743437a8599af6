//! `Message::decode`: the payload of any frame from a peer that proved the token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raykit::cluster::proto::Message;

fuzz_target!(|payload: &[u8]| {
    if let Ok(msg) = Message::decode(payload) {
        raykit_fuzz::check_message(&msg);
    }
});
