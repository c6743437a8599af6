//! What a driver's workers print, printed by the driver: before it exits (or shuts the runtime
//! down) it waits, briefly, for the output still on the way.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Client, CLIENT};
use crate::cluster::proto::Message;

/// How long a driver that exits waits for the output its workers printed before.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

impl Client {
    /// Waits (at most [`DRAIN_TIMEOUT`]) until the output the job's workers printed so far is
    /// printed here: the head asks every node for what it has not sent yet. Only a driver
    /// that prints its workers' output waits, and only once.
    pub(crate) fn drain_output(&self) {
        let Some(printer) = &self.output else {
            return;
        };
        if self.drains.load(Ordering::Acquire) > 0 || self.lost.load(Ordering::Acquire) {
            return;
        }
        let seq = self.drains.fetch_add(1, Ordering::AcqRel) + 1;
        let ask = Message::DrainOutput {
            job_id: self.job_id,
            seq,
        };
        if self.send(ask).is_ok() && !printer.wait_drained(seq, DRAIN_TIMEOUT) {
            tracing::debug!("worker output still on the way after {DRAIN_TIMEOUT:?}");
        }
    }
}

/// Registers, once, a hook that runs when the process exits (`main` returns or
/// `std::process::exit`): the driver prints what its last tasks printed before it goes.
pub(super) fn drain_at_exit() {
    extern "C" fn at_exit() {
        // Nothing may unwind out of an exit hook.
        let _ = std::panic::catch_unwind(|| {
            let client = CLIENT.lock().upgrade();
            if let Some(client) = client {
                client.drain_output();
            }
        });
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `at_exit` is an `extern "C" fn()` that lives as long as the program.
        if unsafe { libc::atexit(at_exit) } != 0 {
            tracing::debug!("cannot register the exit hook that waits for worker output");
        }
    });
}
