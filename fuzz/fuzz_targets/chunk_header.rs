//! The two readers of an object chunk that work on a frame's payload without decoding the
//! message: the header read from a frame's first bytes before its piece arrives
//! (`PieceHeader::parse`), and the chunk read in place from a whole frame (`ChunkView::parse`).
//! Both must agree with `Message::decode` on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raykit::cluster::proto::Message;
use raykit_fuzz::__fuzz::{self, PieceStart};

fuzz_target!(|payload: &[u8]| {
    let start = __fuzz::piece_header(payload);
    let view = __fuzz::chunk_view(payload);
    match (Message::decode(payload), view) {
        (
            Ok(Message::ObjectChunk {
                id,
                offset,
                total,
                bytes,
            }),
            Some(v),
        ) => assert_eq!((id, offset, total, &bytes[..]), v),
        (Ok(Message::ObjectChunk { .. }), None) => panic!("a chunk was not read in place"),
        (Ok(other), Some(_)) => panic!("a {} message was read in place as a chunk", other.name()),
        (Err(e), Some(_)) => panic!("a malformed message was read in place as a chunk: {e}"),
        _ => {}
    }
    if let Some((id, offset, total, piece)) = view {
        let header_len = piece.as_ptr() as usize - payload.as_ptr() as usize;
        let expected = PieceStart::Piece {
            id,
            offset,
            total,
            len: piece.len() as u64,
            header_len,
        };
        assert_eq!(start, expected);
    }
    if let PieceStart::Piece { header_len, .. } = start {
        // Read as it arrives: every shorter start asks for more, the header alone suffices.
        for end in 0..header_len {
            assert_eq!(__fuzz::piece_header(&payload[..end]), PieceStart::NeedMore);
        }
        assert_eq!(__fuzz::piece_header(&payload[..header_len]), start);
    }
});
