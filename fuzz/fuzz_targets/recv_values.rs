//! An authenticated peer's byte stream read as `FrameReader::recv_values` reads it: the
//! length-delimited framing (frames up to 1 GiB), `Message::decode`, and the assembly of
//! `ValueChunk` pieces into the empty slots of the `RunTask`, `RunActorCall`, `HostActor` or
//! `TaskResult` message that follows them.
//!
//! The first byte is the size of each read (see `read_size`); the rest is what the peer sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raykit::cluster::proto::Message;
use raykit::ErrorKind;
use raykit_fuzz::{__fuzz, check_message, read_size};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let (mut conn, _) = __fuzz::stream(input.to_vec(), read_size(control), true);
    // Each call consumes at least one frame or ends the stream; the bound is a second guard.
    for _ in 0..=input.len() {
        match __fuzz::block_on(conn.recv_values()) {
            Ok(msg) => {
                assert!(
                    !matches!(msg, Message::ValueChunk { .. }),
                    "recv_values returned a piece"
                );
                check_message(&msg);
            }
            Err(e) if e.kind() == ErrorKind::Network => break,
            // Malformed frames and pieces; a declared size that cannot be reserved.
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::Protocol | ErrorKind::System),
                "{e:?}"
            ),
        }
    }
});
