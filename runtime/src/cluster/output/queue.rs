//! A bounded queue of worker output waiting for a connection: a node's lines for the head,
//! or the head's lines of one job for its driver.

use std::collections::{BTreeMap, VecDeque};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::cluster::proto::{JobId, Message, OutputBatch, OutputLine, OUTPUT_BATCH_LINES};
use crate::runtime::NodeId;

/// How many bytes of lines a queue keeps for a connection that is slower than the workers
/// print; more are dropped and counted.
pub const QUEUE_BYTES: usize = 1 << 20;

/// How many bytes of lines go in one write.
const WRITE_BYTES: usize = 256 << 10;

/// How many drain answers a queue keeps.
const QUEUE_MARKERS: usize = 256;

/// A queue of output lines (and drain answers) waiting for a connection, bounded by
/// [`QUEUE_BYTES`]: lines that do not fit are dropped and counted per job and node, and the
/// count travels with their next batch.
#[derive(Debug, Default)]
pub struct OutputQueue {
    inner: Mutex<QueueInner>,
    ready: Notify,
}

#[derive(Debug, Default)]
struct QueueInner {
    items: VecDeque<Queued>,
    bytes: usize,
    markers: usize,
    dropped: BTreeMap<(JobId, NodeId), u64>,
}

#[derive(Debug)]
enum Queued {
    /// Lines, and the bytes they count for.
    Lines(OutputBatch, usize),
    Drained(JobId, u64),
}

impl OutputQueue {
    /// Queues one line of `job` from `node_id`, or counts it dropped when the queue is full.
    pub fn push_line(&self, job: JobId, node_id: NodeId, line: OutputLine) {
        let cost = line.cost();
        let mut q = self.inner.lock();
        if q.bytes + cost > QUEUE_BYTES {
            *q.dropped.entry((job, node_id)).or_default() += 1;
            return;
        }
        q.bytes += cost;
        match q.items.back_mut() {
            Some(Queued::Lines(batch, bytes))
                if batch.job_id == job
                    && batch.node_id == node_id
                    && batch.lines.len() < OUTPUT_BATCH_LINES
                    && *bytes + cost <= WRITE_BYTES =>
            {
                batch.lines.push(line);
                *bytes += cost;
            }
            _ => q.items.push_back(Queued::Lines(
                OutputBatch {
                    job_id: job,
                    node_id,
                    lines: vec![line],
                    dropped: 0,
                },
                cost,
            )),
        }
        drop(q);
        self.ready.notify_one();
    }

    /// Queues the lines of `batch` that fit; counts the others, and those `batch` says were
    /// dropped before, as dropped.
    pub fn push_batch(&self, batch: OutputBatch) {
        let OutputBatch {
            job_id,
            node_id,
            lines,
            dropped,
        } = batch;
        if dropped > 0 {
            *self
                .inner
                .lock()
                .dropped
                .entry((job_id, node_id))
                .or_default() += dropped;
        }
        for line in lines {
            self.push_line(job_id, node_id, line);
        }
        self.ready.notify_one();
    }

    /// Queues the answer to the drain `seq` of `job`, after the lines queued so far.
    pub fn push_drained(&self, job: JobId, seq: u64) {
        let mut q = self.inner.lock();
        if q.markers >= QUEUE_MARKERS {
            tracing::debug!(%job, seq, "too many drain answers queued; one dropped");
            return;
        }
        q.markers += 1;
        q.items.push_back(Queued::Drained(job, seq));
        drop(q);
        self.ready.notify_one();
    }

    /// The next messages to write: the lines queued (about [`WRITE_BYTES`] of them at most,
    /// with the drop counts of their jobs) and the drain answers among them, in order; once
    /// the lines are out, the drop counts of jobs with no line left. Waits while there are
    /// none. Cancel-safe: nothing is taken unless it is returned.
    pub async fn next(&self) -> Vec<Message> {
        loop {
            let ready = self.ready.notified();
            let out = self.take();
            if !out.is_empty() {
                return out;
            }
            ready.await;
        }
    }

    /// [`OutputQueue::next`] without waiting.
    pub fn take(&self) -> Vec<Message> {
        let mut q = self.inner.lock();
        let mut out = Vec::new();
        let mut written = 0;
        while written < WRITE_BYTES {
            let Some(item) = q.items.pop_front() else {
                break;
            };
            match item {
                Queued::Lines(mut batch, bytes) => {
                    q.bytes -= bytes;
                    written += bytes;
                    let key = (batch.job_id, batch.node_id);
                    batch.dropped += q.dropped.remove(&key).unwrap_or(0);
                    out.push(Message::WorkerOutput(batch));
                }
                Queued::Drained(job_id, seq) => {
                    q.markers -= 1;
                    out.push(Message::OutputDrained { job_id, seq });
                }
            }
        }
        if q.items.is_empty() {
            for ((job_id, node_id), dropped) in std::mem::take(&mut q.dropped) {
                out.push(Message::WorkerOutput(OutputBatch {
                    job_id,
                    node_id,
                    lines: Vec::new(),
                    dropped,
                }));
            }
        }
        out
    }
}
