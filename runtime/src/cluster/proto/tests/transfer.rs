//! Objects and task values crossing a loopback connection, in one frame or in pieces, and
//! pieces out of order refused.

use std::time::Duration;

use super::{bytes, connected_pair};
use crate::cluster::proto::{Fetched, Message, TaskId, OBJECT_CHUNK};
use crate::error::ErrorKind;
use crate::object::ObjectId;

#[tokio::test]
async fn a_value_fetched_in_pieces_fills_the_placed_buffer_and_disorder_is_refused() {
    let (mut fetcher, mut holder) = connected_pair().await;
    let id = ObjectId::next();
    let value = bytes(2 * OBJECT_CHUNK + 999, 7);
    let small = bytes(1000, 2);
    let (sent, sent_small) = (value.clone(), small.clone());
    let serving = tokio::spawn(async move {
        // A value in one frame longer than what is read to tell a piece from a message,
        // then one in pieces on the same connection.
        for v in [&sent_small, &sent] {
            assert!(matches!(
                holder.recv().await.unwrap(),
                Message::FetchObject { .. }
            ));
            holder.send_object(id, v).await.unwrap();
        }
        // The second time, a piece that does not start where the last one ended.
        assert!(matches!(
            holder.recv().await.unwrap(),
            Message::FetchObject { .. }
        ));
        let piece = Message::ObjectChunk {
            id,
            offset: 5,
            total: sent.len() as u64,
            bytes: sent[5..10].to_vec(),
        };
        holder.send(&piece).await.unwrap();
    });
    let place = |total: u64| Some(vec![0u8; total as usize]);
    let timeout = Duration::from_secs(10);
    match fetcher.fetch_object_into(id, timeout, place).await.unwrap() {
        Fetched::Bytes(buf) => assert!(buf == small),
        Fetched::Placed(_) => panic!("a value in one frame needs no placed buffer"),
    }
    match fetcher.fetch_object_into(id, timeout, place).await.unwrap() {
        Fetched::Placed(buf) => assert!(buf == value),
        Fetched::Bytes(_) => panic!("the value did not go into the placed buffer"),
    }
    let err = fetcher
        .fetch_object_into(id, timeout, place)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(err.message().contains("out of order"), "{err}");
    serving.await.unwrap();
}

#[tokio::test]
async fn large_arguments_and_outputs_cross_in_pieces_and_assemble() {
    let (mut node, mut worker) = connected_pair().await;
    let big = bytes(2 * OBJECT_CHUNK + 12_345, 3);
    let args = vec![bytes(10, 4), big.clone(), Vec::new(), bytes(77, 5)];
    let tuple = args.concat();
    let shell = Message::RunTask {
        task_id: TaskId(42),
        function: "m::f".into(),
        signature_hash: 9,
        args: Vec::new(),
    };
    // As the node sends a task: on the wire, pieces of the argument tuple, each at most
    // OBJECT_CHUNK, then the message with one empty slot.
    let sending = tokio::spawn(async move {
        node.send_with_values(&shell, &args).await.unwrap();
        node.send_with_values(&shell, &args).await.unwrap();
        node
    });
    let mut offset = 0;
    loop {
        match worker.recv().await.unwrap() {
            Message::ValueChunk {
                task_id,
                index,
                offset: at,
                total,
                bytes,
            } => {
                assert_eq!(
                    (task_id, index, at, total),
                    (TaskId(42), 0, offset, tuple.len() as u64)
                );
                assert!(bytes.len() <= OBJECT_CHUNK);
                assert_eq!(bytes, tuple[offset as usize..][..bytes.len()]);
                offset += bytes.len() as u64;
            }
            Message::RunTask { args, .. } => {
                assert_eq!(args, vec![Vec::<u8>::new()]);
                break;
            }
            other => panic!("unexpected {}", other.name()),
        }
    }
    assert_eq!(offset, tuple.len() as u64);
    // As the worker reads it: the tuple assembled in its slot.
    let Message::RunTask { task_id, args, .. } = worker.recv_values().await.unwrap() else {
        panic!("not a RunTask")
    };
    assert_eq!(task_id, TaskId(42));
    assert_eq!(args.len(), 1);
    assert!(args[0] == tuple);
    let mut node = sending.await.unwrap();

    // Outputs are objects of their own: each large one in pieces, small ones in the frame.
    let outputs = vec![
        bytes(OBJECT_CHUNK + 1, 6),
        bytes(100, 7),
        Vec::new(),
        bytes(OBJECT_CHUNK, 8),
        bytes(5, 9),
    ];
    let expected = outputs.clone();
    let answer = Message::TaskResult {
        task_id: TaskId(42),
        result: Ok(Vec::new()),
    };
    let sending = tokio::spawn(async move {
        worker.send_with_values(&answer, &outputs).await.unwrap();
        // A small answer stays one frame.
        worker
            .send_with_values(&answer, &[vec![1u8, 2, 3]])
            .await
            .unwrap();
        worker
    });
    let Message::TaskResult { result, .. } = node.recv_values().await.unwrap() else {
        panic!("not a TaskResult")
    };
    assert!(result.unwrap() == expected);
    let Message::TaskResult { result, .. } = node.recv().await.unwrap() else {
        panic!("a small answer came in pieces")
    };
    assert_eq!(result.unwrap(), vec![vec![1u8, 2, 3]]);
    let mut worker = sending.await.unwrap();

    // An actor's constructor arguments, with a field after the list.
    let host = Message::HostActor {
        actor_id: postcard::from_bytes(&[1]).unwrap(),
        class: "m::A".into(),
        signature_hash: 3,
        args: Vec::new(),
        max_concurrency: 1000,
    };
    let args = vec![big.clone()];
    let sending = tokio::spawn(async move {
        node.send_with_values(&host, &args).await.unwrap();
    });
    let Message::HostActor {
        args,
        max_concurrency,
        ..
    } = worker.recv_values().await.unwrap()
    else {
        panic!("not a HostActor")
    };
    assert_eq!(max_concurrency, 1000);
    assert!(args == vec![big]);
    sending.await.unwrap();
}

#[tokio::test]
async fn malformed_pieces_are_protocol_errors() {
    let chunk = |task: u128, index: u32, offset: u64, total: u64, len: usize| Message::ValueChunk {
        task_id: TaskId(task),
        index,
        offset,
        total,
        bytes: vec![1; len],
    };
    let run = |task: u128, args: Vec<Vec<u8>>| Message::RunTask {
        task_id: TaskId(task),
        function: "f".into(),
        signature_hash: 0,
        args,
    };
    let cases: Vec<(&str, Vec<Message>)> = vec![
        ("a gap", vec![chunk(1, 0, 0, 10, 4), chunk(1, 0, 5, 10, 5)]),
        ("no first piece", vec![chunk(1, 0, 4, 10, 6)]),
        (
            "another task",
            vec![chunk(1, 0, 0, 10, 4), chunk(2, 0, 4, 10, 6)],
        ),
        (
            "another value",
            vec![chunk(1, 0, 0, 10, 4), chunk(1, 1, 4, 10, 6)],
        ),
        (
            "overflow",
            vec![chunk(1, 0, 0, 10, 4), chunk(1, 0, 4, 10, 7)],
        ),
        ("too big at once", vec![chunk(1, 0, 0, 3, 4)]),
        (
            "slots going back",
            vec![chunk(1, 1, 0, 2, 2), chunk(1, 0, 0, 2, 2)],
        ),
        (
            "unfinished",
            vec![chunk(1, 0, 0, 10, 4), run(1, vec![Vec::new()])],
        ),
        ("for no message", vec![chunk(1, 0, 0, 2, 2), Message::Stop]),
        (
            "for another task",
            vec![chunk(1, 0, 0, 2, 2), run(2, vec![Vec::new()])],
        ),
        (
            "a full slot",
            vec![chunk(1, 0, 0, 2, 2), run(1, vec![vec![9]])],
        ),
        (
            "a missing slot",
            vec![chunk(1, 1, 0, 2, 2), run(1, vec![Vec::new()])],
        ),
        ("too large", vec![chunk(1, 0, 0, u64::MAX, 2)]),
    ];
    for (case, messages) in cases {
        let (mut a, mut b) = connected_pair().await;
        for m in &messages {
            a.feed(m).await.unwrap();
        }
        // Something that would be fine after the bad part.
        a.send(&Message::Stop).await.unwrap();
        let e = b.recv_values().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{case}: {e}");
        assert!(e.message().contains("task"), "{case}: {e}");
    }
    // The right pieces, then a well-formed message, pass.
    let (mut a, mut b) = connected_pair().await;
    for m in [
        chunk(1, 1, 0, 3, 2),
        chunk(1, 1, 2, 3, 1),
        run(1, vec![vec![7], Vec::new()]),
    ] {
        a.feed(&m).await.unwrap();
    }
    a.flush().await.unwrap();
    let Message::RunTask { args, .. } = b.recv_values().await.unwrap() else {
        panic!("not a RunTask")
    };
    assert_eq!(args, vec![vec![7], vec![1, 1, 1]]);
}
