//! Connections to the nodes that objects are fetched from, shared by a node's executor and a
//! program's client.
//!
//! Fetches from one peer run side by side: each takes an idle connection to that peer or opens
//! a new one, and gives it back when done, so a slow fetch never holds up the others. A peer
//! must answer every frame within [`PEER_SILENCE`]: one that does not (frozen, overloaded, cut
//! off) fails the fetch with [`ErrorKind::Network`], and the caller reports the object as
//! unreachable there, so the head can rebuild it elsewhere instead of leaving readers waiting.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

use crate::cluster::proto::{Connection, Fetched, Role};
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;
use crate::runtime::NodeId;

/// How long a peer may stay silent in the middle of a fetch (for the answer to start, and
/// between two pieces of a large value).
pub(crate) const PEER_SILENCE: Duration = Duration::from_secs(10);

/// Idle connections kept per peer.
const IDLE_PER_PEER: usize = 4;

/// Connections to peers, by address.
pub(crate) struct PeerPool {
    role: Role,
    token: String,
    /// This process's own node, when it is a node: a peer that turns out to be this node is
    /// an address another node advertised wrongly.
    own_node: Option<NodeId>,
    /// How long a peer may stay silent ([`PEER_SILENCE`]).
    silence: Duration,
    idle: Mutex<HashMap<String, Vec<Connection>>>,
}

impl std::fmt::Debug for PeerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerPool")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl PeerPool {
    /// Connections made as `role`, proving `token`; `own_node` is this process's node, if any.
    pub(crate) fn new(role: Role, token: String, own_node: Option<NodeId>) -> PeerPool {
        PeerPool {
            role,
            token,
            own_node,
            silence: PEER_SILENCE,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// The same pool with peers allowed `silence` instead of [`PEER_SILENCE`].
    #[cfg(test)]
    fn with_silence(mut self, silence: Duration) -> PeerPool {
        self.silence = silence;
        self
    }

    /// A fresh authenticated connection to `location`.
    async fn connect(&self, location: &str) -> Result<Connection> {
        let (conn, welcome) = Connection::connect(location, &self.token, self.role).await?;
        if Some(welcome.node_id) == self.own_node {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{location} is this node ({}): the node that holds the object advertised an \
                     address that reaches another host from here; start that node with \
                     --node-ip-address set to an address other hosts reach it at",
                    welcome.node_id
                ),
            ));
        }
        Ok(conn)
    }

    /// Fetches `id` from the node at `location`, writing a value that comes in pieces into the
    /// buffer `place(total)` returns when it returns one (see
    /// [`Connection::fetch_object_into`]).
    pub(crate) async fn fetch_into<B: AsMut<[u8]>>(
        &self,
        id: ObjectId,
        location: &str,
        place: impl Fn(u64) -> Option<B>,
    ) -> Result<Fetched<B>> {
        let reused = self.idle.lock().get_mut(location).and_then(Vec::pop);
        let fresh = reused.is_none();
        let mut conn = match reused {
            Some(c) => c,
            None => self.connect(location).await?,
        };
        let mut answer = conn.fetch_object_into(id, self.silence, &place).await;
        // An idle connection may have broken since it was last used: once more on a new one.
        if !fresh
            && answer
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::Network)
        {
            conn = self.connect(location).await?;
            answer = conn.fetch_object_into(id, self.silence, &place).await;
        }
        // After a value or the peer's own error the connection is in step; otherwise not.
        if answer.is_ok()
            || answer
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::ObjectLost)
        {
            let mut idle = self.idle.lock();
            let list = idle.entry(location.to_owned()).or_default();
            if list.len() < IDLE_PER_PEER {
                list.push(conn);
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::proto::{Message, Welcome, PROTOCOL_VERSION};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const TOKEN: &str = "peers-test-token";

    /// A node that accepts connections and proves the token, then answers nothing: a frozen
    /// peer. Returns its address and how many connections asked it for an object.
    async fn silent_peer() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let welcome = Welcome {
            version: PROTOCOL_VERSION,
            node_id: crate::cluster::new_node_id().unwrap(),
            head: false,
        };
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let (mut conn, _) = Connection::accept(stream, TOKEN, welcome).await.unwrap();
                    if let Ok(Message::FetchObject { .. }) = conn.recv().await {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    // Keep the connection open and say nothing.
                    let _ = conn.recv().await;
                });
            }
        });
        (address, asked)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fetches_from_one_peer_run_side_by_side_and_a_silent_peer_fails_them_in_bounded_time() {
        let (address, asked) = silent_peer().await;
        let pool = Arc::new(
            PeerPool::new(Role::Driver, TOKEN.into(), None)
                .with_silence(Duration::from_millis(500)),
        );
        let fetches: Vec<_> = (0..3)
            .map(|_| {
                let (pool, address) = (pool.clone(), address.clone());
                tokio::spawn(async move {
                    pool.fetch_into(ObjectId::next(), &address, |_| None::<Vec<u8>>)
                        .await
                })
            })
            .collect();
        for f in fetches {
            let e = f.await.unwrap().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Network, "{e}");
        }
        // Each fetch asked on a connection of its own, not one behind the other.
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        // Broken connections are not kept for the next fetch.
        assert!(pool.idle.lock().get(&address).is_none_or(Vec::is_empty));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_that_is_this_node_is_refused_with_the_reason() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let me = crate::cluster::new_node_id().unwrap();
        let welcome = Welcome {
            version: PROTOCOL_VERSION,
            node_id: me,
            head: false,
        };
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = Connection::accept(stream, TOKEN, welcome).await;
        });
        let pool = PeerPool::new(Role::Node, TOKEN.into(), Some(me));
        let e = pool
            .fetch_into(ObjectId::next(), &address, |_| None::<Vec<u8>>)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("--node-ip-address"), "{e}");
    }
}
