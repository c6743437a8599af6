//! The head's part in worker output: lines come from the nodes (each on its registration
//! connection) and go to the driver of their job, if it asked for them
//! ([`Message::ForwardOutput`]), through a bounded queue of the driver's connection
//! ([`OutputQueue`]): a driver slower than its workers loses lines (counted), never the
//! head's memory. A node whose lines nobody takes is told to stop sending them
//! ([`Message::MuteOutput`]).
//!
//! Before a driver exits it asks for what is still on the way ([`Message::DrainOutput`]): the
//! head asks every node, and once each has answered (after its lines) tells the driver
//! ([`Message::OutputDrained`]). A node that leaves meanwhile counts as answered.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::cluster::output::OutputQueue;
use crate::cluster::proto::{JobId, Message, OutputBatch};
use crate::runtime::NodeId;

/// Where worker output goes, at the head.
#[derive(Debug, Default)]
pub(super) struct Relay {
    /// The drivers that take their job's output.
    sinks: HashMap<JobId, Arc<OutputQueue>>,
    /// Each connected node's outbox and session.
    nodes: HashMap<NodeId, (u64, mpsc::UnboundedSender<Message>)>,
    /// The drain each job waits for: its number and the nodes that have not answered.
    drains: HashMap<JobId, (u64, HashSet<NodeId>)>,
}

impl Relay {
    /// The node's registration connection `session` carries its output from now on.
    pub(super) fn add_node(
        &mut self,
        node: NodeId,
        session: u64,
        outbox: mpsc::UnboundedSender<Message>,
    ) {
        self.nodes.insert(node, (session, outbox));
    }

    /// The node's connection `session` ended: drains stop waiting for it.
    pub(super) fn remove_node(&mut self, node: NodeId, session: u64) {
        if self.nodes.get(&node).is_some_and(|(s, _)| *s == session) {
            self.nodes.remove(&node);
            let jobs: Vec<JobId> = self.drains.keys().copied().collect();
            for job in jobs {
                self.answered(job, None, node);
            }
        }
    }

    /// The driver of `job` takes its output through `queue`.
    pub(super) fn subscribe(&mut self, job: JobId, queue: Arc<OutputQueue>) {
        self.sinks.insert(job, queue);
    }

    /// The driver of `job` is gone.
    pub(super) fn unsubscribe(&mut self, job: JobId) {
        self.sinks.remove(&job);
        self.drains.remove(&job);
    }

    /// Lines from `node`: to their driver, or the node hears that nobody takes them.
    pub(super) fn output(&mut self, node: NodeId, mut batch: OutputBatch) {
        if let Err(e) = batch.check() {
            tracing::warn!(%node, "worker output dropped: {e}");
            return;
        }
        batch.node_id = node;
        match self.sinks.get(&batch.job_id) {
            Some(queue) => queue.push_batch(batch),
            None => {
                if let Some((_, outbox)) = self.nodes.get(&node) {
                    let _ = outbox.send(Message::MuteOutput {
                        job_id: batch.job_id,
                    });
                }
            }
        }
    }

    /// The driver of `job` asks for the output still on the way (`seq` numbers the request):
    /// every node is asked, and a new request replaces one still waiting.
    pub(super) fn drain(&mut self, job: JobId, seq: u64) {
        let Some(queue) = self.sinks.get(&job) else {
            return;
        };
        if self.nodes.is_empty() {
            queue.push_drained(job, seq);
            return;
        }
        for (_, outbox) in self.nodes.values() {
            let _ = outbox.send(Message::DrainOutput { job_id: job, seq });
        }
        let waiting = self.nodes.keys().copied().collect();
        self.drains.insert(job, (seq, waiting));
    }

    /// `node` sent every line of `job` the drain `seq` asked for (`None`: it is gone).
    pub(super) fn answered(&mut self, job: JobId, seq: Option<u64>, node: NodeId) {
        let Some((asked, waiting)) = self.drains.get_mut(&job) else {
            return;
        };
        if seq.is_some_and(|s| s != *asked) {
            return;
        }
        waiting.remove(&node);
        if waiting.is_empty() {
            let seq = *asked;
            self.drains.remove(&job);
            if let Some(queue) = self.sinks.get(&job) {
                queue.push_drained(job, seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::proto::OutputLine;

    fn batch(job: JobId, text: &str) -> OutputBatch {
        OutputBatch {
            job_id: job,
            // The head puts the sending node's id here.
            node_id: crate::cluster::new_node_id().unwrap(),
            lines: vec![OutputLine {
                pid: 5,
                name: "add".into(),
                stderr: false,
                text: text.into(),
            }],
            dropped: 0,
        }
    }

    #[test]
    fn lines_go_to_their_driver_or_mute_the_node_and_a_drain_waits_for_every_node() {
        let mut relay = Relay::default();
        let (a, b) = (
            crate::cluster::new_node_id().unwrap(),
            crate::cluster::new_node_id().unwrap(),
        );
        let (to_a, mut from_a) = mpsc::unbounded_channel();
        let (to_b, mut from_b) = mpsc::unbounded_channel();
        relay.add_node(a, 1, to_a);
        relay.add_node(b, 1, to_b);
        let job = JobId(1);
        let driver = Arc::new(OutputQueue::default());
        relay.subscribe(job, driver.clone());

        relay.output(a, batch(job, "one"));
        // Nobody takes job 2's lines: its node hears so.
        relay.output(b, batch(JobId(2), "lost"));
        assert!(matches!(
            from_b.try_recv(),
            Ok(Message::MuteOutput { job_id: JobId(2) })
        ));
        // A batch past the limits is dropped.
        let mut huge = batch(job, "x");
        huge.lines[0].text = "x".repeat(crate::cluster::proto::OUTPUT_LINE_MAX + 1);
        relay.output(a, huge);

        relay.drain(job, 7);
        for rx in [&mut from_a, &mut from_b] {
            assert!(matches!(
                rx.try_recv(),
                Ok(Message::DrainOutput {
                    job_id: JobId(1),
                    seq: 7
                })
            ));
        }
        relay.answered(job, Some(7), a);
        relay.output(b, batch(job, "two"));
        // An answer to another drain does not count; the node leaving does.
        relay.answered(job, Some(6), b);
        assert_eq!(driver.take().len(), 2);
        relay.remove_node(b, 1);
        let out = driver.take();
        assert!(matches!(
            out.as_slice(),
            [Message::OutputDrained { seq: 7, .. }]
        ));

        // The lines came named by the node they came from.
        relay.output(a, batch(job, "three"));
        match driver.take().as_slice() {
            [Message::WorkerOutput(got)] => {
                assert_eq!(got.node_id, a);
                assert_eq!(got.lines[0].text, "three");
            }
            other => panic!("{other:?}"),
        }
        relay.unsubscribe(job);
        relay.output(a, batch(job, "gone"));
        assert!(matches!(from_a.try_recv(), Ok(Message::MuteOutput { .. })));
        assert!(driver.take().is_empty());
    }
}
