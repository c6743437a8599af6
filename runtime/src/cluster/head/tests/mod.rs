//! The head's rules, driven in process: membership and dead nodes (`nodes`), a driver's
//! connection (`driver`).

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::cluster::node::store::ObjectStore;
use crate::cluster::proto::{Message, NodeInfo};
use crate::object::ObjectId;
use crate::runtime::NodeId;

mod driver;
mod nodes;

fn info(id: NodeId) -> NodeInfo {
    NodeInfo {
        node_id: id,
        address: "127.0.0.1:1".into(),
        resources: [("CPU".to_owned(), 2.0)].into_iter().collect(),
        pid: 1,
    }
}
