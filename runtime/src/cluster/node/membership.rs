//! The node's side of membership: join the head with the node's resources, send a heartbeat
//! every [`HEARTBEAT_INTERVAL`], rejoin after a lost connection, leave on shutdown.
//!
//! A node joins as an incarnation (starting at [`FIRST_INCARNATION`]). When the head answers
//! [`Message::Rejoin`] (it declared the node dead, or does not know it), the node drops all it
//! runs and holds ([`Executor::reset`]) and joins again as a higher incarnation; reports of
//! work begun under an older incarnation are never sent.
//!
//! The registration connection also carries the node's work: the head's `ExecuteTask`s (and
//! the tasks it sends ahead, `HoldTask` and `StartTask`) go to the node's [`Executor`], whose
//! `TaskFinished` reports go back the same way. This module must not decide membership: the
//! head does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::node::executor::{Executor, Report, FIRST_INCARNATION};

use crate::cluster::proto::{Connection, Message, NodeInfo, NodeLoad, Role, HANDSHAKE_TIMEOUT};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::NodeId;

/// How often a node tells the head it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

/// A node that cannot reach its head for this long gives up and exits.
pub const HEAD_LOST_TIMEOUT: Duration = Duration::from_secs(60);

/// A starting node that cannot join its head for this long gives up.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest pause between two attempts to reach the head.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How a registration connection ended without an error.
enum Ended {
    /// The daemon shuts down; the node has left.
    Shutdown,
    /// The head no longer counts this incarnation: the node has reset and joins again.
    Rejoin,
}

/// Where a node stands in its membership across connections.
struct Membership {
    /// The current incarnation.
    incarnation: u64,
    /// Whether the current incarnation has not joined yet.
    fresh: bool,
    /// A report that could not be sent on the last connection.
    pending: Option<Report>,
}

/// One node's membership in a cluster.
#[derive(Clone)]
pub struct Node {
    /// Runs the tasks the head assigns (none when the node only keeps membership).
    pub executor: Option<Arc<Executor>>,
    /// The node's id.
    pub node_id: NodeId,
    /// The head's address (`HOST:PORT`).
    pub head_address: String,
    /// Where this node's daemon listens.
    pub listen: SocketAddr,
    /// The IP other hosts reach this node at; `None`: the listening address when it is a
    /// specific one, else the local address of the connection to the head.
    pub advertise: Option<std::net::IpAddr>,
    /// The resources the node declares.
    pub resources: BTreeMap<String, f64>,
    /// The cluster token.
    pub token: String,
    /// On the head's own daemon: makes an in-process link to the head (instead of a TCP
    /// connection to itself).
    pub head_link: Option<HeadLink>,
}

/// Makes a fresh in-process connection to the head of the same daemon.
pub type HeadLink = Arc<dyn Fn() -> Connection + Send + Sync>;

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.node_id)
            .field("head_address", &self.head_address)
            .field("in_process", &self.head_link.is_some())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// What the node reports in a heartbeat. Until the node schedules work itself, everything
    /// it declares is available.
    fn load(&self) -> NodeLoad {
        match &self.executor {
            Some(e) => e.load(),
            None => NodeLoad {
                available: self.resources.clone(),
                ..NodeLoad::default()
            },
        }
    }

    /// The address other hosts reach this node's daemon at: the advertised IP, else the
    /// listening address, or, when the daemon listens on every interface, the interface its
    /// connection to the head uses.
    fn advertised_address(&self, towards_head: &Connection) -> String {
        let mut addr = self.listen;
        if let Some(ip) = self.advertise {
            addr.set_ip(ip);
        } else if addr.ip().is_unspecified() {
            addr.set_ip(towards_head.local_addr().ip());
        }
        addr.to_string()
    }

    /// Stays a member of the cluster until `shutdown` (then leaves and returns `Ok`), or until
    /// membership becomes impossible: a refused token or protocol, or the head unreachable for [`JOIN_TIMEOUT`] at start or [`HEAD_LOST_TIMEOUT`]
    /// later.
    /// `joined` is told when the node first joins; what the executor reports arrives on
    /// `outbox` and goes to the head.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        joined: tokio::sync::oneshot::Sender<()>,
        mut outbox: mpsc::UnboundedReceiver<Report>,
    ) -> Result<()> {
        let mut member = Membership {
            incarnation: self
                .executor
                .as_ref()
                .map_or(FIRST_INCARNATION, |e| e.incarnation()),
            fresh: true,
            pending: None,
        };
        let mut joined = Some(joined);
        let mut last_contact = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let err = match self
                .session(
                    &shutdown,
                    &mut last_contact,
                    &mut joined,
                    &mut outbox,
                    &mut member,
                )
                .await
            {
                Ok(Ended::Shutdown) => return Ok(()),
                Ok(Ended::Rejoin) => {
                    last_contact = Instant::now();
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Err(e) => e,
            };
            if matches!(
                err.kind(),
                ErrorKind::Unauthorized | ErrorKind::Protocol | ErrorKind::Config
            ) {
                return Err(err);
            }
            let limit = if joined.is_some() {
                JOIN_TIMEOUT
            } else {
                HEAD_LOST_TIMEOUT
            };
            if last_contact.elapsed() > limit {
                let what = if joined.is_some() {
                    "could not join"
                } else {
                    "lost"
                };
                return Err(Error::with_source(
                    ErrorKind::Network,
                    format!(
                        "{what} the head at {} for {limit:?}: {err}",
                        self.head_address
                    ),
                    err,
                ));
            }
            tracing::warn!(head = %self.head_address, "no connection to the head: {err}; retrying");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The head no longer counts this incarnation: drop everything the node runs and holds
    /// and become a fresh incarnation of at least `at_least`.
    fn reset(&self, member: &mut Membership, at_least: u64, reason: &str) {
        let next = at_least.max(member.incarnation + 1);
        tracing::warn!(node = %self.node_id, incarnation = next, "the head does not count this node as a member ({reason}); resetting and joining again");
        if let Some(executor) = &self.executor {
            executor.reset(next);
        }
        member.incarnation = next;
        member.fresh = true;
        member.pending = None;
    }

    /// One registration connection: join, then heartbeat until something breaks.
    async fn session(
        &self,
        shutdown: &CancellationToken,
        last_contact: &mut Instant,
        joined: &mut Option<tokio::sync::oneshot::Sender<()>>,
        outbox: &mut mpsc::UnboundedReceiver<Report>,
        member: &mut Membership,
    ) -> Result<Ended> {
        let (mut conn, welcome) = match &self.head_link {
            Some(link) => {
                link()
                    .handshake(&self.head_address, &self.token, Role::Node)
                    .await?
            }
            None => Connection::connect(&self.head_address, &self.token, Role::Node).await?,
        };
        if !welcome.head {
            return Err(Error::new(
                ErrorKind::Config,
                format!("{} is a node, not the head of a cluster", self.head_address),
            ));
        }
        let info = NodeInfo {
            node_id: self.node_id,
            address: self.advertised_address(&conn),
            resources: self.resources.clone(),
            pid: std::process::id(),
        };
        let join = Message::JoinNode {
            info,
            incarnation: member.incarnation,
            fresh: member.fresh,
        };
        match conn.request(&join, HANDSHAKE_TIMEOUT).await? {
            Message::Registered { head_node_id } => {
                tracing::info!(node = %self.node_id, head = %head_node_id, incarnation = member.incarnation, "joined the cluster at {}", self.head_address);
                member.fresh = false;
            }
            Message::Rejoin {
                incarnation,
                reason,
            } => {
                self.reset(member, incarnation, &reason);
                return Ok(Ended::Rejoin);
            }
            Message::Failed { error } => return Err(error),
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "the head answered RegisterNode with a {} message",
                        other.name()
                    ),
                ))
            }
        }
        *last_contact = Instant::now();
        if let Some(joined) = joined.take() {
            let _ = joined.send(());
        }
        let (mut from_head, mut to_head) = conn.split();
        // A report that could not be sent on the last connection goes first.
        if let Some((incarnation, msg)) = member.pending.take() {
            if incarnation == member.incarnation {
                if let Err(e) = to_head.send(&msg).await {
                    member.pending = Some((incarnation, msg));
                    return Err(e);
                }
            }
        }
        let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // What the workers print goes to the head on this connection too, after the reports.
        let output = self.executor.as_ref().map(|e| e.workers().output().clone());
        let queue = output.as_deref().map(|o| o.queue());
        // One wait for output across many messages: it is not set up anew for each one.
        let lines = crate::cluster::head::next_output(queue);
        tokio::pin!(lines);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        to_head.send(&Message::UnregisterNode),
                    ).await;
                    return Ok(Ended::Shutdown);
                }
                _ = tick.tick() => {
                    if let Some(executor) = &self.executor {
                        executor.workers().reap_idle();
                    }
                    to_head.send(&Message::Heartbeat(self.load())).await?;
                    *last_contact = Instant::now();
                }
                msg = from_head.recv() => match msg? {
                    Message::Failed { error } => return Err(error),
                    Message::Rejoin { incarnation, reason } => {
                        self.reset(member, incarnation, &reason);
                        return Ok(Ended::Rejoin);
                    }
                    Message::ExecuteTask(assignment) => match &self.executor {
                        Some(executor) => executor.execute(assignment),
                        None => tracing::warn!("this node runs no tasks; ignoring ExecuteTask"),
                    },
                    Message::HoldTask(assignment) => match &self.executor {
                        Some(executor) => executor.hold(assignment),
                        None => tracing::warn!("this node runs no tasks; ignoring HoldTask"),
                    },
                    Message::StartTask { task_id } => match &self.executor {
                        Some(executor) => executor.start_held(task_id),
                        None => tracing::warn!("this node runs no tasks; ignoring StartTask"),
                    },
                    Message::DeleteObjects { ids } => {
                        if let Some(executor) = &self.executor {
                            executor.delete_objects(&ids);
                        }
                    }
                    Message::StartActor(assignment) => match &self.executor {
                        Some(executor) => executor.start_actor(*assignment),
                        None => tracing::warn!("this node runs no tasks; ignoring StartActor"),
                    },
                    Message::ExecuteActorCall(call) => match &self.executor {
                        Some(executor) => executor.actor_call(*call),
                        None => tracing::warn!("this node runs no tasks; ignoring ExecuteActorCall"),
                    },
                    Message::CancelJob { job_id } => {
                        if let Some(executor) = &self.executor {
                            executor.cancel_job(job_id);
                        }
                    }
                    Message::StopActor { actor_id, incarnation, kill } => {
                        if let Some(executor) = &self.executor {
                            executor.stop_actor(actor_id, incarnation, kill);
                        }
                    }
                    Message::DrainOutput { job_id, seq } => match &output {
                        Some(output) => output.drain(job_id, seq),
                        None => to_head.send(&Message::OutputDrained { job_id, seq }).await?,
                    },
                    Message::MuteOutput { job_id } => {
                        if let Some(output) = &output {
                            output.mute(job_id);
                        }
                    }
                    other => tracing::debug!("ignoring a {} message from the head", other.name()),
                },
                Some(report) = outbox.recv() => {
                    // Reports that queued meanwhile share one write; those of work begun
                    // under an older incarnation go nowhere.
                    let mut next = Some(report);
                    while let Some((incarnation, msg)) = next.take() {
                        if incarnation == member.incarnation {
                            if let Err(e) = to_head.feed(&msg).await {
                                member.pending = Some((incarnation, msg));
                                return Err(e);
                            }
                        } else {
                            tracing::debug!(incarnation, "a report of an old incarnation dropped: {}", msg.name());
                        }
                        next = outbox.try_recv().ok();
                    }
                    to_head.flush().await?;
                }
                batch = &mut lines => {
                    lines.set(crate::cluster::head::next_output(queue));
                    for msg in &batch {
                        to_head.feed(msg).await?;
                    }
                    to_head.flush().await?;
                }
            }
        }
    }
}
