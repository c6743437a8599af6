//! The head's rules, driven in process: membership and dead nodes (`nodes`), a driver's
//! connection (`driver`), and the scheduler's placement, dependency, failure, freeing and
//! lending rules (`scheduling`, `lifetime`) through its public methods, with channels standing
//! in for nodes and drivers.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::scheduler::{ConnId, Scheduler, UNKNOWN_GRACE};
use crate::cluster::node::store::ObjectStore;
use crate::cluster::proto::{
    ActorCreation, JobId, Message, NodeInfo, StoredObject, TaskId, TaskOutcome, TaskSubmission,
    WireArg,
};
use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;
use crate::runtime::NodeId;

mod driver;
mod lifetime;
mod nodes;
mod scheduling;

fn info(id: NodeId) -> NodeInfo {
    NodeInfo {
        node_id: id,
        address: "127.0.0.1:1".into(),
        resources: [("CPU".to_owned(), 2.0)].into_iter().collect(),
        pid: 1,
    }
}

fn oid(n: u128) -> ObjectId {
    postcard::from_bytes(&postcard::to_allocvec(&n).unwrap()).unwrap()
}

fn nid() -> NodeId {
    crate::cluster::new_node_id().unwrap()
}

fn cpus(n: f64) -> BTreeMap<String, f64> {
    [("CPU".to_owned(), n)].into_iter().collect()
}

fn task(id: u128, args: Vec<WireArg>, outputs: Vec<ObjectId>) -> TaskSubmission {
    TaskSubmission {
        task_id: TaskId(id),
        job_id: JobId(1),
        function: "t::f".into(),
        signature_hash: 1,
        args,
        outputs,
        resources: cpus(1.0),
        max_retries: 1,
        arg_names: None,
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Message>) -> Vec<Message> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        out.push(m);
    }
    out
}

/// The tasks a node was told to start now.
fn executed(msgs: &[Message]) -> Vec<TaskId> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::ExecuteTask(a) => Some(a.task.task_id),
            Message::StartTask { task_id } => Some(*task_id),
            _ => None,
        })
        .collect()
}

/// The tasks a node was sent to hold.
fn held(msgs: &[Message]) -> Vec<TaskId> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::HoldTask(a) => Some(a.task.task_id),
            _ => None,
        })
        .collect()
}

/// A scheduler with no node yet, and one driver connection.
fn scheduler_with_driver() -> (Scheduler, ConnId) {
    let mut s = Scheduler::new(nid(), Arc::new(ObjectStore::new()));
    // The driver's end is dropped: these tests read what nodes are sent.
    let (dtx, _) = mpsc::unbounded_channel();
    let d = s.add_conn(dtx, JobId(1));
    (s, d)
}

/// Adds a node of one CPU at `address` (the head's own node when it is the first): its id and
/// what it is sent.
fn one_cpu_node(s: &mut Scheduler, address: &str) -> (NodeId, mpsc::UnboundedReceiver<Message>) {
    let id = if s.nodes.is_empty() {
        s.head_node
    } else {
        nid()
    };
    let (tx, rx) = mpsc::unbounded_channel();
    s.add_node(id, address.into(), &cpus(1.0), tx);
    (id, rx)
}

/// A scheduler with its head's node of one CPU and one driver connection.
fn one_cpu_cluster() -> (Scheduler, NodeId, mpsc::UnboundedReceiver<Message>, ConnId) {
    let (mut s, d) = scheduler_with_driver();
    let (head, hrx) = one_cpu_node(&mut s, "h:1");
    (s, head, hrx, d)
}

fn stored(id: ObjectId) -> TaskOutcome {
    TaskOutcome::Stored(vec![StoredObject {
        id,
        size: 1,
        inline: Some(vec![7]),
    }])
}
