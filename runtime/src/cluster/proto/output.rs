//! Worker output on its way to the driver: the lines a job's worker processes printed
//! ([`OutputLine`]), in batches per node ([`OutputBatch`]), and the limits a peer's batch is
//! checked against.

use serde::{Deserialize, Serialize};

use super::JobId;
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::NodeId;

/// The longest line of worker output that travels as one line (longer ones are cut into
/// pieces of this size).
pub const OUTPUT_LINE_MAX: usize = 16 << 10;

/// The most lines one [`OutputBatch`] may carry.
pub const OUTPUT_BATCH_LINES: usize = 1024;

/// The most bytes of text and names one [`OutputBatch`] may carry.
pub const OUTPUT_BATCH_BYTES: usize = 1 << 20;

/// The longest name of what a worker runs (a function or an actor class) in an output line.
pub const OUTPUT_NAME_MAX: usize = 1024;

/// Lines the worker processes of one job printed on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputBatch {
    /// The job.
    pub job_id: JobId,
    /// The node the workers run on.
    pub node_id: NodeId,
    /// The lines, in the order they were read.
    pub lines: Vec<OutputLine>,
    /// How many lines of the job were dropped on the way before these (a queue was full).
    pub dropped: u64,
}

/// One line a worker process printed, without its newline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputLine {
    /// The worker's process id.
    pub pid: u32,
    /// What the worker was running: a function's or an actor class's name (empty before its
    /// first task).
    pub name: String,
    /// Whether it came on stderr (else stdout).
    pub stderr: bool,
    /// The line (invalid UTF-8 replaced).
    pub text: String,
}

impl OutputLine {
    /// The bytes this line counts for in bounded queues.
    pub fn cost(&self) -> usize {
        self.text.len() + self.name.len() + 16
    }
}

impl OutputBatch {
    /// Checks a peer's batch against the limits ([`OUTPUT_BATCH_LINES`],
    /// [`OUTPUT_BATCH_BYTES`], [`OUTPUT_LINE_MAX`], [`OUTPUT_NAME_MAX`]).
    pub fn check(&self) -> Result<()> {
        let fail = |what: String| {
            Err(Error::new(
                ErrorKind::Protocol,
                format!("worker output of {}: {what}", self.job_id),
            ))
        };
        if self.lines.len() > OUTPUT_BATCH_LINES {
            return fail(format!(
                "{} lines in one batch (at most {OUTPUT_BATCH_LINES})",
                self.lines.len()
            ));
        }
        let mut bytes = 0usize;
        for line in &self.lines {
            if line.text.len() > OUTPUT_LINE_MAX {
                return fail(format!(
                    "a line of {} bytes (at most {OUTPUT_LINE_MAX})",
                    line.text.len()
                ));
            }
            if line.name.len() > OUTPUT_NAME_MAX {
                return fail(format!(
                    "a name of {} bytes (at most {OUTPUT_NAME_MAX})",
                    line.name.len()
                ));
            }
            bytes += line.cost();
        }
        if bytes > OUTPUT_BATCH_BYTES {
            return fail(format!(
                "{bytes} bytes in one batch (at most {OUTPUT_BATCH_BYTES})"
            ));
        }
        Ok(())
    }
}
