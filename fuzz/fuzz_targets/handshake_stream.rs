//! Both sides of the handshake reading a peer's raw bytes: the 4 KiB framing, the version
//! check, every handshake frame in its place, and the refusals.
//!
//! The first byte is the control byte: its low bit picks the side (0: the accepting daemon,
//! 1: the connecting program), the other bits the size of each read (see `read_size`). The
//! rest is what the peer sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raykit::cluster::proto::{Handshake, Role, Welcome, PROTOCOL_VERSION};
use raykit_fuzz::{__fuzz, frames, node_id, read_size, TOKEN};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let (conn, written) = __fuzz::stream(input.to_vec(), read_size(control >> 1), false);
    if control & 1 == 0 {
        let welcome = Welcome {
            version: PROTOCOL_VERSION,
            node_id: node_id(1),
            head: true,
        };
        let accepted = __fuzz::block_on(conn.accept_handshake(TOKEN, welcome));
        // Without the token no input proves it: the daemon's nonce is fresh.
        assert!(accepted.is_err(), "a peer without the token was welcomed");
        // A refused peer is told why, in handshake frames; one that closed the connection
        // first is gone, and is only ever sent a challenge.
        let bytes = written.bytes();
        let sent = frames(&bytes);
        let gone = accepted.as_ref().is_err_and(|e| {
            e.to_string()
                .contains("closed the connection during the handshake")
        });
        let challenges = if gone {
            &sent[..]
        } else {
            let last = sent.last().expect("the daemon answered");
            assert!(matches!(
                Handshake::decode(last),
                Ok(Handshake::Refused { .. })
            ));
            &sent[..sent.len() - 1]
        };
        for payload in challenges {
            assert!(matches!(
                Handshake::decode(payload),
                Ok(Handshake::Challenge { .. })
            ));
        }
    } else {
        let connected = __fuzz::block_on(conn.handshake("fuzz", TOKEN, Role::Driver));
        // Without the token no answer proves it: the program's nonce is fresh.
        assert!(connected.is_err(), "a daemon without the token was trusted");
    }
});
