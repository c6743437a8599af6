//! A daemon process (`raykit start ... --block`): one listener, one node, and for a head the
//! [`Head`] too; every accepted connection handshakes, then is served by the head or the node.
//!
//! This module owns the process's lifetime: before anything else it sweeps away what daemons
//! killed on this host left ([`records::sweep`]), claims its own directories, records itself
//! in [`records`] once it listens, stops on a `Stop` message, SIGTERM or SIGINT, and removes
//! its record and directories on the way out. A connection that misbehaves ends that
//! connection only.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::cluster::head::Head;
use crate::cluster::node::executor::Executor;
use crate::cluster::node::store::ObjectStore;
use crate::cluster::node::workers::{self, WorkerEnv};
use crate::cluster::node::{Node, JOIN_TIMEOUT};
use crate::cluster::proto::limits::{self, Admission, Gate, Ticket};
use crate::cluster::proto::{Connection, Message, Refusal, Role, Welcome, PROTOCOL_VERSION};
use crate::cluster::records::{self, ClusterRecord, DaemonRecord};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::NodeId;

/// What a daemon runs: checked arguments of `raykit start`.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    /// Run the head (and its node); otherwise join the head at `head_address`.
    pub head: bool,
    /// The head to join, for a non-head daemon.
    pub head_address: Option<String>,
    /// The interface to listen on.
    pub bind: IpAddr,
    /// The port to listen on (0: any free port).
    pub port: u16,
    /// The IP other hosts reach this daemon at (`--node-ip-address`); `None`: derived from
    /// `bind` (see `cluster::addresses`).
    pub node_ip: Option<IpAddr>,
    /// The resources this node declares.
    pub resources: BTreeMap<String, f64>,
    /// The cluster token.
    pub token: String,
    /// Where this daemon's output goes, when detached.
    pub log: Option<PathBuf>,
}

struct Daemon {
    node_id: NodeId,
    head: Option<Arc<Head>>,
    listen: SocketAddr,
    store: Arc<ObjectStore>,
    executor: Arc<Executor>,
    head_address: String,
    token: String,
    shutdown: CancellationToken,
}

/// An address this host can connect to for a listener bound to `addr`.
fn connectable(mut addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    addr
}

/// Runs a daemon until it is stopped. `ready` is called once the daemon listens and is
/// recorded. Returns an error when the daemon cannot start or its node cannot stay a member.
pub fn run(spec: DaemonSpec, ready: impl FnOnce(&DaemonRecord)) -> Result<()> {
    // One worker thread: a daemon's work is many small messages between its connections, and
    // on a small machine a second thread mostly adds cross-thread wake-ups (cluster
    // single_client_tasks_async: 14k/s with two, 18-19k/s with one). Blocking work (hashing an
    // executable) runs in `block_in_place`, which moves the other tasks to another thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("raykit-daemon")
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::System,
                format!("cannot start the daemon's runtime: {e}"),
            )
        })?;
    rt.block_on(serve(spec, ready))
}

async fn serve(spec: DaemonSpec, ready: impl FnOnce(&DaemonRecord)) -> Result<()> {
    let exe_cap = crate::cluster::node::exe::cache_cap()?;
    // Daemons killed with `kill -9` leave their records and caches; this one cleans up after
    // them before it writes anything of its own.
    let swept = records::sweep();
    if !swept.is_empty() {
        tracing::info!(
            records = swept.records,
            dirs = swept.dirs,
            bytes = swept.bytes,
            "cleaned up after daemons that are gone: {swept}"
        );
    }
    let listener = TcpListener::bind((spec.bind, spec.port))
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Network,
                format!(
                    "cannot listen on {}: {e}",
                    SocketAddr::new(spec.bind, spec.port)
                ),
            )
        })?;
    let local = listener.local_addr().map_err(|e| {
        Error::new(
            ErrorKind::Network,
            format!("reading the listening address: {e}"),
        )
    })?;
    let listen = connectable(local);
    let advertise = crate::cluster::addresses::advertised_ip(spec.node_ip, spec.bind, spec.head);
    let node_id = crate::cluster::new_node_id()?;
    let head_address = match (&spec.head_address, spec.head) {
        (_, true) => listen.to_string(),
        (Some(a), false) => a.clone(),
        (None, false) => {
            return Err(Error::new(
                ErrorKind::Config,
                "a node needs the head's address (--address HOST:PORT)",
            ))
        }
    };
    let store = Arc::new(ObjectStore::with_arena(
        crate::cluster::node::arena::default_capacity(),
    ));
    let home = records::home();
    let head_dir = home.join(format!("head-{node_id}"));
    let node_dir = home.join(format!("{node_id}"));
    let head = spec
        .head
        .then(|| Arc::new(Head::new(node_id, store.clone(), head_dir.clone(), exe_cap)));
    let shutdown = CancellationToken::new();
    let (to_head, outbox) = tokio::sync::mpsc::unbounded_channel();
    let executor = Executor::new(
        WorkerEnv {
            node_address: listen.to_string(),
            node_id,
            head_address: head_address.clone(),
            token: spec.token.clone(),
            arena: store.arena().map(|a| a.location().clone()),
        },
        spec.resources.clone(),
        store.clone(),
        (workers::exe_cache_dir(&home, node_id), exe_cap),
        to_head,
    );
    let executor = Arc::new(if spec.head {
        executor.with_head_exes(head_dir.join("exe"))
    } else {
        executor
    });
    let daemon = Arc::new(Daemon {
        node_id,
        head: head.clone(),
        listen,
        store,
        executor: executor.clone(),
        head_address: head_address.clone(),
        token: spec.token.clone(),
        shutdown: shutdown.clone(),
    });
    if let Some(h) = &head {
        tokio::spawn(h.clone().monitor(shutdown.clone()));
    }
    // The head's own node talks to the head in process.
    let head_link = head.as_ref().map(|_| {
        let daemon = daemon.clone();
        Arc::new(move || {
            let (node_end, head_end) = Connection::in_process(listen);
            tokio::spawn(daemon.clone().serve_link(head_end));
            node_end
        }) as crate::cluster::node::HeadLink
    });
    tokio::spawn(accept_connections(listener, daemon));

    // The daemon counts as started once its node has joined: a wrong token or an unreachable
    // head fails `raykit start` instead of leaving a daemon that never joins.
    let node = Node {
        executor: Some(executor.clone()),
        node_id,
        head_address: head_address.clone(),
        listen: local,
        advertise,
        resources: spec.resources.clone(),
        token: spec.token.clone(),
        head_link,
    };
    let (joined_tx, joined_rx) = tokio::sync::oneshot::channel();
    let mut agent = tokio::spawn(node.run(shutdown.clone(), joined_tx, outbox));
    // However the daemon ends, its workers and its caches go with it (and if it is killed,
    // the next daemon's sweep removes them: their owner files name this process).
    let mut dirs = vec![node_dir];
    if spec.head {
        dirs.push(head_dir);
    }
    let _cleanup = Cleanup {
        executor: executor.clone(),
        dirs: dirs.clone(),
    };
    if let Err(e) = dirs.iter().try_for_each(|d| records::claim_dir(d)) {
        shutdown.cancel();
        return Err(e);
    }
    let joined = tokio::select! {
        j = joined_rx => j.map_err(|_| None),
        r = &mut agent => Err(Some(r)),
        // The node gives up by itself after JOIN_TIMEOUT; this is only a backstop.
        _ = tokio::time::sleep(JOIN_TIMEOUT + Duration::from_secs(5)) => Err(None),
    };
    if let Err(agent_result) = joined {
        shutdown.cancel();
        let agent_result = match agent_result {
            Some(r) => r,
            None => match tokio::time::timeout(Duration::from_secs(2), &mut agent).await {
                Ok(r) => r,
                Err(_) => Ok(Ok(())),
            },
        };
        return Err(match agent_result {
            Ok(Err(e)) => e,
            Ok(Ok(())) => Error::new(
                ErrorKind::Network,
                format!("could not join the head at {head_address} within {JOIN_TIMEOUT:?}"),
            ),
            Err(e) => Error::new(
                ErrorKind::System,
                format!("the node's membership task failed: {e}"),
            ),
        });
    }

    if !spec.head {
        if let Some(warning) =
            crate::cluster::addresses::loopback_only_warning(&head_address, spec.bind)
        {
            tracing::warn!("{warning}");
        }
    }
    let record = DaemonRecord {
        pid: std::process::id(),
        advertised: advertise.map(|ip| SocketAddr::new(ip, local.port()).to_string()),
        head: spec.head,
        node_id: node_id.to_string(),
        listen: listen.to_string(),
        cluster: head_address.clone(),
        token: spec.token.clone(),
        exe: std::env::current_exe().ok(),
        log: spec.log.clone(),
        started: records::process_start_time(std::process::id()),
    };
    let recorded = records::write_daemon(&record).and_then(|()| {
        records::write_cluster(&ClusterRecord {
            address: head_address.clone(),
            token: spec.token.clone(),
        })
    });
    let outcome = match recorded {
        Ok(()) => {
            tracing::info!(
                node = %node_id,
                listen = %local,
                advertised = %advertise.map_or_else(|| "the address towards the head".to_owned(), |ip| SocketAddr::new(ip, local.port()).to_string()),
                head = spec.head,
                cluster = %head_address,
                resources = ?spec.resources,
                "raykit daemon started"
            );
            ready(&record);
            wait_for_stop(&shutdown, &mut agent).await
        }
        Err(e) => Err(e),
    };
    shutdown.cancel();
    if !agent.is_finished() {
        // Let the node say goodbye to the head before the process ends.
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut agent).await;
    }
    records::remove_daemon(record.pid);
    let others_in_cluster = records::daemons()
        .iter()
        .any(|r| r.cluster == head_address && r.runs());
    if !others_in_cluster {
        records::remove_cluster_if(&head_address);
    }
    tracing::info!(node = %node_id, "raykit daemon stopped");
    outcome
}

/// Kills the daemon's workers and removes its per-node directories when dropped.
struct Cleanup {
    executor: Arc<Executor>,
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.executor.shutdown();
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Accepts connections until `shutdown`; each is served by its own task, within the limits of
/// the listener's [`Gate`].
async fn accept_connections(listener: TcpListener, daemon: Arc<Daemon>) {
    let gate = Arc::new(Gate::new(limits::connection_cap()));
    tokio::spawn({
        let gate = gate.clone();
        let shutdown = daemon.shutdown.clone();
        async move { gate.log_summaries(shutdown).await }
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match gate.admit(peer.ip()) {
                    Admission::Open(ticket) => {
                        tokio::spawn(daemon.clone().serve_connection(stream, gate.clone(), ticket));
                    }
                    Admission::RateLimited => {
                        tokio::spawn(Connection::refuse_stream(
                            stream,
                            Refusal::RateLimited,
                            "too many refused handshakes from this address: try again later"
                                .to_owned(),
                        ));
                    }
                    Admission::Full => drop(stream),
                },
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = daemon.shutdown.cancelled() => return,
        }
    }
}

/// Waits for a reason to stop: a `Stop` message, SIGTERM, SIGINT, or the node giving up.
async fn wait_for_stop(
    shutdown: &CancellationToken,
    agent: &mut tokio::task::JoinHandle<Result<()>>,
) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let signal_err =
        |e: std::io::Error| Error::new(ErrorKind::System, format!("cannot handle signals: {e}"));
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_err)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_err)?;
    tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        joined = &mut *agent => match joined {
            Ok(result) => result,
            Err(e) => Err(Error::new(
                ErrorKind::System,
                format!("the node's membership task failed: {e}"),
            )),
        },
        _ = sigterm.recv() => {
            tracing::info!("SIGTERM: stopping");
            Ok(())
        }
        _ = sigint.recv() => {
            tracing::info!("SIGINT: stopping");
            Ok(())
        }
    }
}

impl Daemon {
    /// Handshakes with one peer, then answers its requests until it leaves.
    async fn serve_connection(self: Arc<Self>, stream: TcpStream, gate: Arc<Gate>, ticket: Ticket) {
        let Ok(peer) = stream.peer_addr() else { return };
        {
            // A slot is held only until the peer says something. A newer peer takes the slot
            // of the oldest; the evicted one still goes on when its first bytes are in (they are
            // looked for first, with a peek: readiness alone can be spurious), so only silent
            // peers are cut off, however slow this daemon is to look. The handshake itself is
            // bounded by its own timeout.
            let slot = gate.handshake_slot();
            let mut first = [0u8; 1];
            tokio::select! {
                biased;
                spoke = stream.peek(&mut first) => {
                    if spoke.is_err() {
                        return;
                    }
                }
                _ = slot.evicted() => return,
            }
        }
        let accepted = Connection::accept(stream, &self.token, self.welcome()).await;
        match accepted {
            Ok(accepted) => self.serve_accepted(accepted).await,
            Err(e) if e.kind() == ErrorKind::Network => {
                tracing::debug!("handshake failed: {e}");
            }
            Err(e) => gate.refused(peer.ip(), &e),
        }
        drop(ticket);
    }

    /// [`Daemon::serve_connection`] for the in-process link of this daemon's own node.
    async fn serve_link(self: Arc<Self>, conn: Connection) {
        match conn.accept_handshake(&self.token, self.welcome()).await {
            Ok(accepted) => self.serve_accepted(accepted).await,
            Err(e) => tracing::warn!("{e}"),
        }
    }

    fn welcome(&self) -> Welcome {
        Welcome {
            version: PROTOCOL_VERSION,
            node_id: self.node_id,
            head: self.head.is_some(),
        }
    }

    async fn serve_accepted(self: Arc<Self>, (mut conn, role): (Connection, Role)) {
        let peer = conn.peer_addr();
        tracing::debug!(%peer, ?role, "connection accepted");
        loop {
            let msg = tokio::select! {
                m = conn.recv() => m,
                _ = self.shutdown.cancelled() => return,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) if e.kind() == ErrorKind::Network => {
                    tracing::debug!(%peer, "connection ended: {e}");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%peer, "closing the connection: {error}");
                    let _ = conn.send(&Message::Failed { error }).await;
                    return;
                }
            };
            let answer = match msg {
                Message::RegisterNode(info) if role == Role::Node => match &self.head {
                    Some(head) => {
                        let first = (
                            info,
                            crate::cluster::node::executor::FIRST_INCARNATION,
                            true,
                        );
                        head.serve_node(conn, first, &self.shutdown).await;
                        return;
                    }
                    None => Message::Failed {
                        error: self.not_the_head(),
                    },
                },
                Message::JoinNode {
                    info,
                    incarnation,
                    fresh,
                } if role == Role::Node => match &self.head {
                    Some(head) => {
                        head.serve_node(conn, (info, incarnation, fresh), &self.shutdown)
                            .await;
                        return;
                    }
                    None => Message::Failed {
                        error: self.not_the_head(),
                    },
                },
                first @ (Message::RegisterJob { .. } | Message::AttachJob { .. })
                    if matches!(role, Role::Driver | Role::Worker) =>
                {
                    match &self.head {
                        Some(head) => {
                            head.serve_driver(conn, first, role, &self.shutdown).await;
                            return;
                        }
                        None => Message::Failed {
                            error: self.not_the_head(),
                        },
                    }
                }
                Message::FetchExe { exe_hash } if role == Role::Node => match &self.head {
                    Some(head) => {
                        if let Err(e) = head.send_exe(&mut conn, &exe_hash).await {
                            tracing::warn!(%peer, "sending executable {exe_hash} failed: {e}");
                            return;
                        }
                        continue;
                    }
                    None => Message::Failed {
                        error: self.not_the_head(),
                    },
                },
                Message::FetchObject { id } => {
                    let sent = match self.store.get(id) {
                        // Large values go in pieces sliced from the stored bytes.
                        Some(bytes) => conn.send_object(id, &bytes).await,
                        None => {
                            let error = Error::new(
                                ErrorKind::ObjectLost,
                                format!("object {id} is not stored on the node at {}", self.listen),
                            );
                            conn.send(&Message::Failed { error }).await
                        }
                    };
                    if let Err(e) = sent {
                        tracing::debug!(%peer, "connection ended: {e}");
                        return;
                    }
                    continue;
                }
                Message::WorkerReady {
                    job_id,
                    pid,
                    shared_memory,
                } if role == Role::Worker => {
                    self.executor
                        .workers()
                        .worker_ready(pid, job_id, conn, shared_memory);
                    return;
                }
                Message::StatusRequest => match &self.head {
                    Some(head) => Message::Status(head.status()),
                    None => Message::Failed {
                        error: self.not_the_head(),
                    },
                },
                Message::DeadNodesRequest => match &self.head {
                    Some(head) => Message::DeadNodes(head.dead_nodes()),
                    None => Message::Failed {
                        error: self.not_the_head(),
                    },
                },
                Message::Stop => {
                    tracing::info!(%peer, "stop requested");
                    let _ = conn.send(&Message::Stopping).await;
                    self.shutdown.cancel();
                    return;
                }
                other => {
                    let error = Error::new(
                        ErrorKind::Protocol,
                        format!("unexpected {} message from a {role:?}", other.name()),
                    );
                    tracing::warn!(%peer, "closing the connection: {error}");
                    let _ = conn.send(&Message::Failed { error }).await;
                    return;
                }
            };
            if let Err(e) = conn.send(&answer).await {
                tracing::debug!(%peer, "connection ended: {e}");
                return;
            }
        }
    }

    fn not_the_head(&self) -> Error {
        Error::new(
            ErrorKind::Config,
            format!(
                "this daemon is a node, not the head; the head is at {}",
                self.head_address
            ),
        )
    }
}
