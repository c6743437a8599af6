//! A handshake frame from a peer that has not proven the token: the version check that reads a
//! hello's first bytes (`hello_prefix`) and `Handshake::decode`, on payloads up to the
//! handshake's frame limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raykit::cluster::proto::handshake::hello_prefix;
use raykit::cluster::proto::{Handshake, HANDSHAKE_MAX_FRAME};
use raykit::ErrorKind;

fuzz_target!(|payload: &[u8]| {
    if payload.len() > HANDSHAKE_MAX_FRAME {
        return;
    }
    let prefix = hello_prefix(payload);
    match Handshake::decode(payload) {
        Ok(frame) => raykit_fuzz::check_handshake(&frame, payload),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Protocol),
    }
    if let Some((0, None)) = prefix {
        assert!(
            Handshake::decode(payload).is_err(),
            "a hello without a version decoded"
        );
    }
});
