//! A node's answer to `FetchObject` as `Connection::fetch_object_into` reads it: the frame
//! start read a few bytes at a time to tell an `ObjectChunk` header from another message
//! (`peek_piece`), pieces read straight into a placed buffer (`read_piece`), whole frames taken
//! from what is buffered (`next_frame`), chunks read in place into a `ChunkAssembler`, and
//! `ObjectData` or `Failed` answers.
//!
//! The first byte is the control byte: its low two bits pick what the fetcher offers for a value
//! in pieces (0 or 3: no buffer, 1: a buffer of the announced size when it is at most 1 MiB,
//! 2: a buffer of the wrong size), the other bits the size of each read (see `read_size`). The
//! rest is what the node sent.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use raykit::cluster::proto::Fetched;
use raykit_fuzz::{__fuzz, object_id, read_size, FETCHED};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let (mut conn, _) = __fuzz::stream(input.to_vec(), read_size(control >> 2), true);
    let mode = control & 3;
    let announced = std::cell::Cell::new(None);
    let place = |total: u64| {
        announced.set(Some(total));
        match mode {
            1 if total <= 1 << 20 => Some(vec![0u8; total as usize]),
            2 => Some(vec![0u8; 3]),
            _ => None,
        }
    };
    let fetched =
        __fuzz::block_on(conn.fetch_object_into(object_id(FETCHED), Duration::from_secs(5), place));
    match fetched {
        Ok(Fetched::Placed(buf)) => assert_eq!(Some(buf.len() as u64), announced.get()),
        Ok(Fetched::Bytes(buf)) => {
            if let Some(total) = announced.get() {
                assert_eq!(
                    buf.len() as u64,
                    total,
                    "an assembled value of another size"
                );
            }
        }
        // The node's own error, or one of the fetch: any kind.
        Err(_) => {}
    }
});
