//! Encodings built from borrowed bytes decode as the messages they stand for.

use serde::Serialize;

use super::bytes;
use crate::cluster::proto::transfer::{object_chunk_header, FrameStart, PieceHeader};
use crate::cluster::proto::values::{encode_with_values, ValueSlots};
use crate::cluster::proto::{
    encode_object_chunk, encode_object_data, ChunkAssembler, Message, StoredObject, TaskId,
};
use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;

#[test]
fn byte_fields_encode_as_sequences_of_u8_would() {
    #[derive(Serialize)]
    struct Plain {
        list: Vec<Vec<u8>>,
        opt: Option<Vec<u8>>,
        result: std::result::Result<Vec<Vec<u8>>, Error>,
    }
    let list = vec![vec![1u8, 2, 3], vec![], (0..200).map(|i| i as u8).collect()];
    let msg = Message::RunTask {
        task_id: TaskId(5),
        function: "f".into(),
        signature_hash: 9,
        args: list.clone(),
    };
    let plain =
        postcard::to_allocvec(&(msg.encode().unwrap()[0], 5u128, "f", 9u64, list.clone())).unwrap();
    assert_eq!(msg.encode().unwrap(), plain);
    let with = Message::TaskResult {
        task_id: TaskId(1),
        result: Ok(list.clone()),
    };
    let Message::TaskResult { result, .. } = Message::decode(&with.encode().unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(result.unwrap(), list);
    let stored = StoredObject {
        id: postcard::from_bytes(&[1]).unwrap(),
        size: 3,
        inline: Some(vec![4, 5, 6]),
    };
    let bytes = postcard::to_allocvec(&stored).unwrap();
    assert_eq!(
        bytes,
        postcard::to_allocvec(&(1u8, 3u8, Some(vec![4u8, 5, 6]))).unwrap()
    );
    let _ = Plain {
        list,
        opt: None,
        result: Err(Error::new(ErrorKind::System, "x")),
    };
}

#[test]
fn object_data_encodes_like_the_message() {
    let id: ObjectId =
        postcard::from_bytes(&postcard::to_allocvec(&(7u128 << 64 | 3)).unwrap()).unwrap();
    for len in [0usize, 1, 127, 128, 300, 70_000] {
        let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let raw = encode_object_data(id, &bytes).unwrap();
        let msg = Message::ObjectData {
            id,
            bytes: bytes.clone(),
        };
        assert_eq!(raw, msg.encode().unwrap(), "length {len}");
    }
}

#[test]
fn object_chunks_encode_like_the_message_and_assemble_in_order() {
    let id: ObjectId = postcard::from_bytes(&postcard::to_allocvec(&9u128).unwrap()).unwrap();
    let value: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let mut a = ChunkAssembler::new(id, 300).unwrap();
    for (i, piece) in value.chunks(128).enumerate() {
        let offset = (i * 128) as u64;
        let raw = encode_object_chunk(id, offset, 300, piece).unwrap();
        let msg = Message::ObjectChunk {
            id,
            offset,
            total: 300,
            bytes: piece.to_vec(),
        };
        assert_eq!(raw, msg.encode().unwrap());
        assert_eq!(a.add(id, offset, 300, piece).unwrap(), i == 2);
    }
    assert_eq!(a.finish(), value);
    let mut b = ChunkAssembler::new(id, 300).unwrap();
    assert!(b.add(id, 128, 300, &value[..128]).is_err());
    assert!(ChunkAssembler::new(id, u64::MAX).is_err());
}

#[test]
fn values_encode_like_the_message_holding_them() {
    let list = vec![bytes(3, 1), Vec::new(), bytes(200, 2)];
    let size = list.iter().map(Vec::len).sum();
    let full_and_shell = |values: Vec<Vec<u8>>| -> Vec<(Message, Message)> {
        let run = |args| Message::RunTask {
            task_id: TaskId(7 << 70),
            function: "m::f".into(),
            signature_hash: 99,
            args,
        };
        let call = |args| Message::RunActorCall {
            task_id: TaskId(3),
            method: "go".into(),
            args,
        };
        let host = |args, max_concurrency| Message::HostActor {
            actor_id: postcard::from_bytes(&[5]).unwrap(),
            class: "m::A".into(),
            signature_hash: 1 << 40,
            args,
            max_concurrency,
        };
        let result = |outputs| Message::TaskResult {
            task_id: TaskId(u128::MAX),
            result: Ok(outputs),
        };
        vec![
            (run(values.clone()), run(Vec::new())),
            (call(values.clone()), call(Vec::new())),
            (host(values.clone(), 1), host(Vec::new(), 1)),
            (host(values.clone(), 300_000), host(Vec::new(), 300_000)),
            (result(values.clone()), result(Vec::new())),
        ]
    };
    for (full, shell) in full_and_shell(list.clone()) {
        let (slots, _) = ValueSlots::of(&shell).unwrap();
        let raw = encode_with_values(&shell, &slots, list.iter().map(Vec::as_slice), size).unwrap();
        assert_eq!(raw, full.encode().unwrap(), "{}", full.name());
    }
    // A shell that already holds values cannot take more.
    for (full, _) in full_and_shell(list.clone()) {
        let (slots, _) = ValueSlots::of(&full).unwrap();
        assert!(encode_with_values(&full, &slots, std::iter::empty(), 0).is_err());
    }
}

#[test]
fn a_chunk_header_reads_from_the_start_of_its_frame() {
    let id = ObjectId::next();
    let piece = bytes(1000, 9);
    let header = object_chunk_header(id, 4096, 1 << 30, piece.len()).unwrap();
    let mut frame = header.clone();
    frame.extend_from_slice(&piece);
    assert_eq!(
        frame,
        encode_object_chunk(id, 4096, 1 << 30, &piece).unwrap()
    );
    let expected = PieceHeader {
        id,
        offset: 4096,
        total: 1 << 30,
        len: 1000,
        header_len: header.len(),
    };
    for end in [header.len(), header.len() + 1, frame.len()] {
        assert_eq!(
            PieceHeader::parse(&frame[..end]),
            FrameStart::Piece(expected)
        );
    }
    for end in 0..header.len() {
        assert_eq!(
            PieceHeader::parse(&frame[..end]),
            FrameStart::NeedMore,
            "{end}"
        );
    }
    let other = Message::FetchObject { id }.encode().unwrap();
    assert_eq!(PieceHeader::parse(&other), FrameStart::Other);
}
