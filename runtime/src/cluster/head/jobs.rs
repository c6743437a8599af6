//! The job table: the jobs (drivers) of the cluster, each with its executable and whether its
//! driver is still connected.

use std::collections::BTreeMap;

use super::exes::valid_hash;
use super::Head;
use crate::cluster::proto::{JobId, Message};
use crate::error::{Error, ErrorKind, Result};

/// The jobs (drivers) of the cluster.
#[derive(Debug, Default)]
pub(super) struct JobTable {
    pub(super) jobs: BTreeMap<u64, JobEntry>,
    pub(super) next: u64,
}

#[derive(Debug)]
pub(super) struct JobEntry {
    /// The job's executable.
    pub(super) exe_hash: String,
    /// For people.
    pub(super) name: String,
    /// Whether its driver is still connected.
    pub(super) running: bool,
}

impl Head {
    /// Registers or finds the job a driver's first message names: its id, whether the head
    /// needs its executable, and whether this connection owns (started) the job.
    pub(super) fn open_job(&self, first: Message) -> Result<(JobId, bool, bool)> {
        let mut t = self.tables.lock();
        match first {
            Message::RegisterJob {
                exe_hash,
                exe_size,
                name,
            } => {
                if !valid_hash(&exe_hash) {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        "RegisterJob needs the executable's hex SHA-256",
                    ));
                }
                t.jobs.next += 1;
                let id = t.jobs.next;
                // In use until the job ends (`close_job`): never evicted meanwhile.
                self.exes.acquire(&exe_hash);
                let need_exe = !self.exes.has(&exe_hash);
                tracing::info!(job = %JobId(id), %name, exe = %exe_hash, size = exe_size, need_exe, "job registered");
                t.jobs.jobs.insert(
                    id,
                    JobEntry {
                        exe_hash,
                        name,
                        running: true,
                    },
                );
                Ok((JobId(id), need_exe, true))
            }
            Message::AttachJob { job_id } => match t.jobs.jobs.get(&job_id.0) {
                Some(_) => Ok((job_id, false, false)),
                None => Err(Error::new(
                    ErrorKind::Config,
                    format!("{job_id} is not a job of this cluster"),
                )),
            },
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("expected RegisterJob or AttachJob, got {}", other.name()),
            )),
        }
    }

    pub(super) fn close_job(&self, job_id: JobId, owner: bool) {
        if owner {
            let mut t = self.tables.lock();
            let mut exe = None;
            if let Some(j) = t.jobs.jobs.get_mut(&job_id.0) {
                if j.running {
                    exe = Some(j.exe_hash.clone());
                }
                j.running = false;
                tracing::debug!(job = %job_id, name = %j.name, "job ended");
            }
            t.sched.job_ended(job_id);
            drop(t);
            if let Some(hash) = exe {
                self.exes.release(&hash);
            }
        }
    }
}
