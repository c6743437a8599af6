//! What the head says: the task that reads it (objects ready or failed, named actors, status,
//! arena blocks, worker output), and the watch that fails every awaited object when the head
//! is gone or silent too long.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Client;
use crate::cluster::output::printer::Printer;
use crate::cluster::proto::{FrameReader, Message};
use crate::error::{Error, ErrorKind};

/// How often a program that waits for objects asks the head whether it is still there.
const PING_INTERVAL: Duration = Duration::from_secs(2);

/// How long the head may stay silent while the program waits for objects before they fail.
/// `RAYKIT_HEAD_TIMEOUT_MS` overrides it (tests use a short one).
pub(super) fn head_timeout() -> Duration {
    std::env::var("RAYKIT_HEAD_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(20), Duration::from_millis)
}

/// Reads what the head says about objects until the connection ends, then fails the rest.
/// Worker output goes to `output` (a driver's printer), even while the client is being
/// dropped (it waits for the output then).
pub(super) async fn read_head(
    client: Weak<Client>,
    mut reader: FrameReader,
    output: Option<Arc<Printer>>,
) {
    let end = loop {
        let msg = reader.recv().await;
        let msg = match (msg, &output) {
            (Ok(Message::WorkerOutput(batch)), Some(printer)) => {
                printer.batch(batch);
                continue;
            }
            (Ok(Message::OutputDrained { seq, .. }), Some(printer)) => {
                printer.drained(seq);
                continue;
            }
            (msg, _) => msg,
        };
        let Some(client) = client.upgrade() else {
            return;
        };
        client.heard();
        match msg {
            Ok(Message::Pong) => {}
            Ok(Message::ObjectReady {
                id,
                location,
                inline,
            }) => client.settle(id, |slot| match inline {
                Some(bytes) => slot.fill_bytes(bytes),
                None => slot.locate(&location),
            }),
            Ok(Message::ObjectFailed { id, error }) => client.settle(id, |slot| slot.fail(error)),
            Ok(Message::ActorFound {
                namespace,
                name,
                actor,
            }) => client.named_actor_found(namespace, name, actor),
            Ok(Message::NodeTotals { totals }) => *client.node_totals.write() = totals,
            Ok(Message::NamedActors { names }) => {
                // A waiter that gave up (its receiver is gone) does not take the answer.
                let mut waiters = client.name_lists.lock();
                let mut names = Some(names);
                while let (Some(waiter), Some(list)) = (waiters.pop_front(), names.take()) {
                    if let Err(back) = waiter.send(list) {
                        names = Some(back.0);
                    }
                }
            }
            Ok(Message::Status(status)) => {
                if let Some(waiter) = client.status_waiters.lock().pop_front() {
                    let _ = waiter.send(status);
                }
            }
            Ok(Message::ObjectAllocated { id, offset }) => client.allocated(id, offset),
            Ok(Message::Failed { error }) => {
                tracing::warn!("the head refused a request: {error}");
            }
            Ok(other) => tracing::warn!("unexpected {} message from the head", other.name()),
            Err(e) => break e,
        }
    };
    if let Some(client) = client.upgrade() {
        tracing::warn!("lost the connection to the head: {end}");
        client.fail_all(&Error::with_source(
            ErrorKind::Network,
            "the connection to the cluster's head was lost",
            end,
        ));
    }
}

/// While the program waits for objects, asks the head every [`PING_INTERVAL`] whether it is
/// still there; when it has said nothing for `timeout`, fails everything awaited (the
/// connection may stay open when the head froze or its host vanished).
pub(super) async fn watch_head(client: Weak<Client>, timeout: Duration) {
    let mut tick = tokio::time::interval(PING_INTERVAL.min(timeout / 2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(client) = client.upgrade() else {
            return;
        };
        if client.lost.load(Ordering::Acquire) {
            return;
        }
        if client.awaited.lock().is_empty() {
            // Nothing to wait for: silence is fine, and the next wait starts the clock anew.
            client.heard();
            continue;
        }
        let silent = client.silent_for();
        if silent > timeout {
            tracing::warn!("the head has not answered for {silent:?}");
            client.fail_all(&Error::new(
                ErrorKind::Network,
                format!(
                    "the cluster's head has not answered for {:.1} s (frozen, or its host is \
                     gone without closing the connection)",
                    silent.as_secs_f64()
                ),
            ));
            return;
        }
        let _ = client.send(Message::Ping);
    }
}

impl Client {
    /// The head just said something.
    fn heard(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.heard_ms.store(now, Ordering::Relaxed);
    }

    /// How long the head has said nothing.
    fn silent_for(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.heard_ms.load(Ordering::Relaxed)))
    }

    /// Fails every awaited object: the head is gone, nothing will fill them.
    fn fail_all(&self, error: &Error) {
        self.lost.store(true, Ordering::Release);
        // Puts waiting for a block get none: their senders' drop ends the wait.
        self.allocations.lock().clear();
        let awaited: Vec<_> = self.awaited.lock().drain().collect();
        for (_, slot) in awaited {
            if let Some(slot) = slot.upgrade() {
                slot.fail(error.clone());
            }
        }
    }
}
