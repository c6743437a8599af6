//! The writing half of a connection the head serves: the messages queued for the peer, sent
//! as they come, and between them the worker output a driver asked for.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::cluster::output::OutputQueue;
use crate::cluster::proto::{FrameWriter, Message};

/// Sends one writer's queued messages as they come, batching what is queued together; then,
/// when nothing else waits, the worker output in `output` (bounded: a peer slow to read it
/// makes lines drop there, not pile up here). Ends when every sender of `rx` is gone.
pub(crate) async fn pump(
    mut writer: FrameWriter,
    mut rx: mpsc::UnboundedReceiver<Message>,
    output: Option<Arc<OutputQueue>>,
) {
    // One wait for output across many writes: it is not set up anew for each message.
    let lines = next_output(output.as_deref());
    tokio::pin!(lines);
    loop {
        let result = tokio::select! {
            biased;
            msg = rx.recv() => {
                let Some(msg) = msg else { return };
                let mut result = writer.feed(&msg).await;
                while result.is_ok() {
                    match rx.try_recv() {
                        Ok(m) => result = writer.feed(&m).await,
                        Err(_) => break,
                    }
                }
                result
            }
            batch = &mut lines => {
                lines.set(next_output(output.as_deref()));
                let mut result = Ok(());
                for msg in &batch {
                    result = writer.feed(msg).await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            }
        };
        if let Err(e) = result.and(writer.flush().await) {
            tracing::debug!("connection ended: {e}");
            return;
        }
    }
}

/// The next worker output in `queue`; never, without one.
pub(crate) async fn next_output(queue: Option<&OutputQueue>) -> Vec<Message> {
    match queue {
        Some(queue) => queue.next().await,
        None => std::future::pending().await,
    }
}
