//! Serving one registered node: its registration answered, then its heartbeats and reports
//! (tasks that ended, actors started or exited, objects it could not fetch, worker output)
//! until it leaves, its connection breaks or the head stops.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::nodes::LEFT;
use super::pump::pump;
use super::Head;
use crate::cluster::proto::{Connection, FrameReader, Message, NodeInfo};
use crate::error::{Error, ErrorKind};
use crate::runtime::NodeId;

impl Head {
    /// Serves one node from its `RegisterNode` on: answers the registration, then takes its
    /// heartbeats until it leaves, its connection breaks or `shutdown`.
    pub async fn serve_node(
        &self,
        mut conn: Connection,
        (info, incarnation, fresh): (NodeInfo, u64, bool),
        shutdown: &CancellationToken,
    ) {
        let node_id = info.node_id;
        let (outbox, rx) = mpsc::unbounded_channel();
        // `Registered` goes first, before any task the scheduler sends the node.
        let registered = Message::Registered {
            head_node_id: self.node_id,
        };
        let _ = outbox.send(registered);
        let session = match self.register(info, incarnation, fresh, outbox.clone()) {
            Ok(s) => s,
            Err(at_least) => {
                tracing::info!(node = %node_id, incarnation, "registration refused: the node must rejoin as incarnation {at_least} or above");
                let rejoin = Message::Rejoin {
                    incarnation: at_least,
                    reason: "this incarnation is not a member of the cluster".to_owned(),
                };
                let _ = conn.send(&rejoin).await;
                return;
            }
        };
        let (mut reader, writer) = conn.split();
        let pump = tokio::spawn(pump(writer, rx, None));
        self.relay.lock().add_node(node_id, session, outbox.clone());
        self.node_loop(
            &mut reader,
            &outbox,
            (node_id, session, incarnation),
            shutdown,
        )
        .await;
        self.relay.lock().remove_node(node_id, session);
        drop(outbox);
        // Let the last answer (a refusal) go out; the pump ends once every sender is gone.
        let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
    }

    async fn node_loop(
        &self,
        conn: &mut FrameReader,
        outbox: &mpsc::UnboundedSender<Message>,
        (node_id, session, incarnation): (NodeId, u64, u64),
        shutdown: &CancellationToken,
    ) {
        loop {
            let msg = tokio::select! {
                m = conn.recv() => m,
                _ = shutdown.cancelled() => return,
            };
            match msg {
                Ok(Message::Heartbeat(load)) => {
                    match self.heartbeat(node_id, session, incarnation, load) {
                        Ok(()) => {}
                        Err(None) => return,
                        Err(Some((at_least, reason))) => {
                            tracing::info!(node = %node_id, incarnation, "a node the head does not count came back ({reason}); telling it to rejoin");
                            let _ = outbox.send(Message::Rejoin {
                                incarnation: at_least,
                                reason,
                            });
                            return;
                        }
                    }
                }
                Ok(Message::TaskFinished {
                    task_id,
                    outcome,
                    next,
                }) => {
                    let mut t = self.tables.lock();
                    if Head::current(&t, node_id, session) {
                        t.sched.task_finished(node_id, task_id, outcome, next);
                    } else {
                        tracing::debug!(node = %node_id, "a report of a session that no longer counts; ignored");
                    }
                }
                Ok(Message::ActorStarted {
                    actor_id,
                    incarnation,
                    result,
                }) => {
                    let mut t = self.tables.lock();
                    if Head::current(&t, node_id, session) {
                        t.sched
                            .actor_started(node_id, actor_id, incarnation, result);
                    } else {
                        tracing::debug!(node = %node_id, "a report of a session that no longer counts; ignored");
                    }
                }
                Ok(Message::ObjectUnreachable { id, location }) => {
                    let mut t = self.tables.lock();
                    if Head::current(&t, node_id, session) {
                        t.sched.object_unreachable(id, &location);
                    } else {
                        tracing::debug!(node = %node_id, "a report of a session that no longer counts; ignored");
                    }
                }
                Ok(Message::ActorExited {
                    actor_id,
                    incarnation,
                    reason,
                }) => {
                    let mut t = self.tables.lock();
                    if Head::current(&t, node_id, session) {
                        t.sched
                            .actor_exited(node_id, actor_id, incarnation, &reason);
                    } else {
                        tracing::debug!(node = %node_id, "a report of a session that no longer counts; ignored");
                    }
                }
                Ok(Message::ActorExiting {
                    actor_id,
                    incarnation,
                }) => {
                    let mut t = self.tables.lock();
                    if Head::current(&t, node_id, session) {
                        t.sched.actor_exiting(node_id, actor_id, incarnation);
                    } else {
                        tracing::debug!(node = %node_id, "a report of a session that no longer counts; ignored");
                    }
                }
                Ok(Message::WorkerOutput(batch)) => self.relay.lock().output(node_id, batch),
                Ok(Message::OutputDrained { job_id, seq }) => {
                    self.relay.lock().answered(job_id, Some(seq), node_id)
                }
                Ok(Message::UnregisterNode) => {
                    self.node_died(node_id, session, LEFT);
                    return;
                }
                Ok(other) => {
                    let error = Error::new(
                        ErrorKind::Protocol,
                        format!("unexpected {} message from a node", other.name()),
                    );
                    tracing::warn!(node = %node_id, "{error}");
                    let _ = outbox.send(Message::Failed { error });
                    self.node_died(node_id, session, "protocol error");
                    return;
                }
                Err(e) => {
                    self.node_died(node_id, session, &format!("connection lost: {e}"));
                    return;
                }
            }
        }
    }
}
