//! Membership: incarnations, stale sessions, and dead nodes leaving the table for the
//! history.

use std::time::Duration;

use super::*;
use crate::cluster::head::{Head, DEAD_HISTORY};
use crate::cluster::proto::NodeLoad;

#[test]
fn a_dead_node_comes_back_only_as_a_fresh_higher_incarnation_and_a_stale_session_kills_nothing() {
    let id = crate::cluster::new_node_id().unwrap();
    let head = Head::new(
        id,
        Arc::new(ObjectStore::new()),
        std::env::temp_dir(),
        u64::MAX,
    );
    let (tx, _rx) = mpsc::unbounded_channel();
    let s1 = head.register(info(id), 1, true, tx.clone()).unwrap();
    let s2 = head.register(info(id), 1, false, tx.clone()).unwrap();
    head.node_died(id, s1, "old connection");
    assert!(head.status().nodes[0].alive);
    assert_eq!(head.heartbeat(id, s2, 1, NodeLoad::default()), Ok(()));
    assert_eq!(head.heartbeat(id, s1, 1, NodeLoad::default()), Err(None));
    head.node_died(id, s2, "gone");
    let st = head.status();
    assert!(!st.nodes[0].alive);
    assert_eq!(st.nodes[0].death_reason.as_deref(), Some("gone"));
    // The dead incarnation hears it must rejoin as a higher one.
    let Err(Some((at_least, why))) = head.heartbeat(id, s2, 1, NodeLoad::default()) else {
        panic!("a dead node's heartbeat counted");
    };
    assert_eq!(at_least, 2);
    assert!(why.contains("gone"), "{why}");
    // Neither a reconnect nor a fresh join of the dead incarnation brings it back.
    assert_eq!(head.register(info(id), 1, false, tx.clone()), Err(2));
    assert_eq!(head.register(info(id), 1, true, tx.clone()), Err(2));
    assert!(!head.status().nodes[0].alive);
    // A fresh higher incarnation does, with every resource free and one entry.
    let s3 = head.register(info(id), 2, true, tx.clone()).unwrap();
    let st = head.status();
    assert_eq!(st.nodes.len(), 1);
    assert!(st.nodes[0].alive);
    assert_eq!(st.nodes[0].death_reason, None);
    assert_eq!(st.nodes[0].load.available.get("CPU"), Some(&2.0));
    assert_eq!(head.heartbeat(id, s3, 2, NodeLoad::default()), Ok(()));
    // What the old sessions say counts for nothing.
    let t = head.tables.lock();
    assert!(Head::current(&t, id, s3));
    assert!(!Head::current(&t, id, s2));
    drop(t);
    // An unknown node reconnecting (not fresh) must rejoin; a fresh one joins.
    let other = crate::cluster::new_node_id().unwrap();
    assert_eq!(head.register(info(other), 4, false, tx.clone()), Err(5));
    assert!(head.register(info(other), 4, true, tx).is_ok());
}

#[test]
fn dead_nodes_leave_the_table_after_the_grace_into_a_history_of_at_most_32() {
    let id = crate::cluster::new_node_id().unwrap();
    let mut head = Head::new(
        id,
        Arc::new(ObjectStore::new()),
        std::env::temp_dir(),
        u64::MAX,
    );
    head.dead_grace = Duration::ZERO;
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut ids = Vec::new();
    for _ in 0..40 {
        let n = crate::cluster::new_node_id().unwrap();
        let s = head.register(info(n), 1, true, tx.clone()).unwrap();
        head.node_died(n, s, "gone");
        ids.push(n);
    }
    let alive = crate::cluster::new_node_id().unwrap();
    head.register(info(alive), 1, true, tx.clone()).unwrap();
    assert_eq!(head.status().nodes.len(), 41);
    head.check_heartbeats();
    let st = head.status();
    assert_eq!(st.nodes.len(), 1, "only the alive node stays");
    assert_eq!(st.nodes[0].info.node_id, alive);
    let dead = head.dead_nodes();
    assert_eq!(dead.len(), DEAD_HISTORY);
    // The most recent ones, oldest first.
    let kept: Vec<NodeId> = dead.iter().map(|n| n.info.node_id).collect();
    assert_eq!(kept, ids[40 - DEAD_HISTORY..]);
    assert!(dead
        .iter()
        .all(|n| !n.alive && n.death_reason.as_deref() == Some("gone")));
    assert_eq!(head.tables.lock().sched_nodes(), 1);
    // A forgotten node comes back only as a fresh higher incarnation.
    let last = ids[39];
    assert_eq!(head.register(info(last), 1, true, tx.clone()), Err(2));
    assert_eq!(head.register(info(last), 1, false, tx.clone()), Err(2));
    assert!(head.register(info(last), 2, true, tx).is_ok());
    assert_eq!(head.status().nodes.len(), 2);
}
