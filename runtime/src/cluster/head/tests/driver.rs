//! A driver's connection, in process: puts through the head's shared-memory arena.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::cluster::head::Head;
use crate::cluster::proto::{Connection, Role};

/// A driver talking to the head in process, as over TCP after the handshake.
async fn driver(head: &Arc<Head>, shutdown: &CancellationToken) -> Connection {
    let (mut ours, theirs) = Connection::in_process("127.0.0.1:1".parse().unwrap());
    let first = Message::RegisterJob {
        exe_hash: "0".repeat(64),
        exe_size: 1,
        name: "test".into(),
        namespace: "test".into(),
    };
    let (head, shutdown) = (head.clone(), shutdown.clone());
    tokio::spawn(async move {
        head.serve_driver(theirs, first, Role::Driver, &shutdown)
            .await
    });
    match ours.recv().await.unwrap() {
        Message::JobRegistered { arena: Some(_), .. } => {}
        other => panic!("expected JobRegistered with an arena, got {other:?}"),
    }
    ours
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn shared_memory_puts_are_stored_and_misuse_is_refused_without_harm() {
    use crate::cluster::node::arena::ArenaView;
    let id = crate::cluster::new_node_id().unwrap();
    let dir = std::env::temp_dir().join(format!("raykit-head-test-{}", std::process::id()));
    let store = Arc::new(ObjectStore::with_arena(16 << 20));
    let head = Arc::new(Head::new(id, store.clone(), dir.clone(), u64::MAX));
    let (tx, _rx) = mpsc::unbounded_channel();
    head.register(info(id), 1, true, tx).unwrap();
    let shutdown = CancellationToken::new();
    let mut conn = driver(&head, &shutdown).await;
    let location = store.arena().unwrap().location().clone();
    let view = ArenaView::attach(&location).unwrap();
    let timeout = Duration::from_secs(10);

    // A seal with no block fails that object only.
    let stray = ObjectId::next();
    conn.send(&Message::SealObject { id: stray }).await.unwrap();
    match conn.recv_timeout(timeout).await.unwrap() {
        Message::ObjectFailed { id, error } => {
            assert_eq!(id, stray);
            assert!(error.message().contains("no block"), "{error}");
        }
        other => panic!("expected ObjectFailed, got {other:?}"),
    }
    // More than the arena holds: no block, so the value would go over the connection.
    let huge = ObjectId::next();
    conn.send(&Message::AllocObject {
        id: huge,
        len: 1 << 40,
    })
    .await
    .unwrap();
    match conn.recv_timeout(timeout).await.unwrap() {
        Message::ObjectAllocated { id, offset: None } => assert_eq!(id, huge),
        other => panic!("expected no room, got {other:?}"),
    }
    // A put through the arena: allocated, written through this process's view, sealed,
    // reported ready and served from the store.
    let obj = ObjectId::next();
    let value: Vec<u8> = (0..3 << 20).map(|i| (i % 253) as u8).collect();
    conn.send(&Message::AllocObject {
        id: obj,
        len: value.len() as u64,
    })
    .await
    .unwrap();
    let offset = match conn.recv_timeout(timeout).await.unwrap() {
        Message::ObjectAllocated {
            id,
            offset: Some(offset),
        } if id == obj => offset,
        other => panic!("expected a block, got {other:?}"),
    };
    // SAFETY: the head allocated this block for this put; nothing reads it before the seal.
    unsafe { view.block_mut(offset, value.len()) }
        .unwrap()
        .copy_from_slice(&value);
    conn.send(&Message::SealObject { id: obj }).await.unwrap();
    match conn.recv_timeout(timeout).await.unwrap() {
        Message::ObjectReady { id, inline, .. } => {
            assert_eq!(id, obj);
            assert!(inline.is_none());
        }
        other => panic!("expected ObjectReady, got {other:?}"),
    }
    assert_eq!(&**store.get(obj).unwrap(), &value[..]);
    // The connection still serves, and freeing the object gives the block back.
    conn.send(&Message::ReleaseObjects { ids: vec![obj] })
        .await
        .unwrap();
    conn.send(&Message::Ping).await.unwrap();
    assert!(matches!(
        conn.recv_timeout(timeout).await.unwrap(),
        Message::Pong
    ));
    assert!(store.get(obj).is_none());
    assert_eq!(store.arena().unwrap().free_bytes(), location.capacity);
    shutdown.cancel();
    let _ = std::fs::remove_dir_all(dir);
}
