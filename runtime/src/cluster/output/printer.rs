//! A driver's side of worker output: the lines its job's workers printed, printed to the
//! driver's own stdout (or stderr) as `(name pid=N node=ID) line` by a thread of their own,
//! so that a terminal slower than the workers never holds up the connection to the head.
//! Lines the thread cannot keep up with are dropped and counted, and the count printed.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::queue::QUEUE_BYTES;
use crate::cluster::proto::{OutputBatch, OutputLine};

/// The printing thread of a driver.
#[derive(Debug, Default)]
pub(crate) struct Printer {
    inner: Mutex<Inner>,
    /// The thread waits on it for work, drains for their answer.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Item>,
    bytes: usize,
    /// Lines dropped here since the last notice.
    dropped: u64,
    /// The last drain whose lines are all printed.
    drained: u64,
}

#[derive(Debug)]
enum Item {
    Batch(OutputBatch, usize),
    Drained(u64),
}

impl Printer {
    /// A printer and its thread (which lives as long as the process).
    pub(crate) fn start() -> std::io::Result<Arc<Printer>> {
        let printer = Arc::new(Printer::default());
        let thread = printer.clone();
        std::thread::Builder::new()
            .name("raykit-output".into())
            .spawn(move || thread.run())?;
        Ok(printer)
    }

    /// Lines from the head: printed soon, or dropped and counted when too many wait.
    pub(crate) fn batch(&self, batch: OutputBatch) {
        if let Err(e) = batch.check() {
            tracing::warn!("worker output dropped: {e}");
            return;
        }
        let cost: usize = batch.lines.iter().map(OutputLine::cost).sum();
        let mut inner = self.inner.lock();
        if inner.bytes + cost > QUEUE_BYTES {
            inner.dropped += batch.lines.len() as u64 + batch.dropped;
            return;
        }
        inner.bytes += cost;
        inner.items.push_back(Item::Batch(batch, cost));
        drop(inner);
        self.changed.notify_all();
    }

    /// The head's answer to the drain `seq`: once the lines before it are printed, the
    /// drain is over.
    pub(crate) fn drained(&self, seq: u64) {
        self.inner.lock().items.push_back(Item::Drained(seq));
        self.changed.notify_all();
    }

    /// Waits (at most `timeout`) until the lines before the answer to drain `seq` are
    /// printed; returns whether they are.
    pub(crate) fn wait_drained(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock();
        while inner.drained < seq {
            if self.changed.wait_until(&mut inner, deadline).timed_out() {
                return inner.drained >= seq;
            }
        }
        true
    }

    fn run(&self) {
        loop {
            let (item, dropped) = {
                let mut inner = self.inner.lock();
                while inner.items.is_empty() && inner.dropped == 0 {
                    self.changed.wait(&mut inner);
                }
                let item = inner.items.pop_front();
                if let Some(Item::Batch(_, cost)) = &item {
                    inner.bytes -= cost;
                }
                (item, std::mem::take(&mut inner.dropped))
            };
            if dropped > 0 {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "(raykit) {dropped} lines of worker output dropped: they came faster than this program printed them"
                );
            }
            match item {
                Some(Item::Batch(batch, _)) => print(&batch),
                Some(Item::Drained(seq)) => {
                    let _ = std::io::stdout().lock().flush();
                    let mut inner = self.inner.lock();
                    inner.drained = inner.drained.max(seq);
                    drop(inner);
                    self.changed.notify_all();
                }
                None => {}
            }
        }
    }
}

/// Prints `batch`, each line on the stream it came on.
fn print(batch: &OutputBatch) {
    if batch.dropped > 0 {
        let _ = writeln!(
            std::io::stderr().lock(),
            "(raykit) {} lines of worker output on {} dropped: they came faster than they could be sent",
            batch.dropped,
            batch.node_id
        );
    }
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for line in &batch.lines {
        let to: &mut dyn Write = if line.stderr { &mut err } else { &mut out };
        let _ = writeln!(to, "{}", Prefixed(line, batch));
    }
    let _ = out.flush();
}

/// A line as the driver prints it: `(name pid=N node=ID) text`.
struct Prefixed<'a>(&'a OutputLine, &'a OutputBatch);

impl std::fmt::Display for Prefixed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Prefixed(line, batch) = self;
        if line.name.is_empty() {
            write!(f, "(pid={} node={}) {}", line.pid, batch.node_id, line.text)
        } else {
            write!(
                f,
                "({} pid={} node={}) {}",
                line.name, line.pid, batch.node_id, line.text
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_prefixed_with_what_ran_them_and_where() {
        let node = crate::cluster::new_node_id().unwrap();
        let mut line = OutputLine {
            pid: 1234,
            name: "add".into(),
            stderr: false,
            text: "hello".into(),
        };
        let batch = OutputBatch {
            job_id: crate::cluster::proto::JobId(1),
            node_id: node,
            lines: Vec::new(),
            dropped: 0,
        };
        assert_eq!(
            Prefixed(&line, &batch).to_string(),
            format!("(add pid=1234 node={node}) hello")
        );
        line.name.clear();
        assert_eq!(
            Prefixed(&line, &batch).to_string(),
            format!("(pid=1234 node={node}) hello")
        );
    }

    #[test]
    fn a_drain_is_over_once_the_lines_before_it_are_printed() {
        let printer = Printer::start().unwrap();
        assert!(!printer.wait_drained(1, Duration::from_millis(10)));
        printer.drained(1);
        assert!(printer.wait_drained(1, Duration::from_secs(10)));
    }
}
