//! The jobs' executables on a node: each job's executable is held in use in the node's cache
//! until the job ends here, fetched from the head the first time (on the head's node, linked
//! from the head's store instead).

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Executor, FETCH_TIMEOUT};
use crate::cluster::head::ExeWriter;
use crate::cluster::proto::{Connection, JobId, Message, Role};
use crate::error::{Error, ErrorKind, Result};

/// The jobs whose executable this node holds in use, and those that ended here.
#[derive(Default)]
pub(super) struct JobExes {
    pub(super) live: HashMap<JobId, String>,
    pub(super) ended: std::collections::HashSet<JobId>,
}

impl Executor {
    /// Marks `hash` in use by `job` until the job ends here ([`Executor::cancel_job`]):
    /// the cache never evicts it meanwhile. Fails for a job that ended.
    fn use_exe(&self, job: JobId, hash: &str) -> Result<()> {
        let mut jobs = self.job_exes.lock();
        if jobs.ended.contains(&job) {
            return Err(Error::new(
                ErrorKind::Cancelled,
                format!("cancelled: {job} ended"),
            ));
        }
        match jobs.live.get(&job) {
            Some(h) if h == hash => {}
            Some(h) => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("{job} runs the executable {h}, not {hash}"),
                ))
            }
            None => {
                jobs.live.insert(job, hash.to_owned());
                self.exes.acquire(hash);
            }
        }
        Ok(())
    }

    /// The path of the executable `hash` of `job` in this node's cache, fetched from the head
    /// first when missing. It stays cached (in use) until the job ends here.
    pub async fn ensure_exe(&self, job: JobId, hash: &str) -> Result<PathBuf> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("`{hash}` is not an executable's hash"),
            ));
        }
        self.use_exe(job, hash)?;
        let path = self.exes.path(hash);
        // Every task asks: answer from memory once the file is counted.
        self.exes.touch(hash);
        if self.exes.has(hash) {
            return Ok(path);
        }
        let _one_at_a_time = self.exe_fetch.lock().await;
        if self.exes.has(hash) {
            return Ok(path);
        }
        if let Some(source) = self.head_exes.as_ref().map(|d| d.join(hash)) {
            if source.is_file() {
                crate::cluster::head::private_dir(self.exes.dir())?;
                let linked = std::fs::hard_link(&source, &path)
                    .or_else(|_| std::fs::copy(&source, &path).map(|_| ()));
                if linked.is_ok() && path.is_file() {
                    self.exes.insert(hash)?;
                    return Ok(path);
                }
            }
        }
        tracing::info!(exe = %hash, head = %self.head_address, "fetching an executable");
        let (mut conn, _) =
            Connection::connect(&self.head_address, &self.token, Role::Node).await?;
        conn.send(&Message::FetchExe {
            exe_hash: hash.to_owned(),
        })
        .await?;
        let mut writer = ExeWriter::new(self.exes.dir(), hash);
        let mut offset = 0u64;
        loop {
            match conn.recv_timeout(FETCH_TIMEOUT).await? {
                Message::ExeChunk { bytes, last } => {
                    // Hashing and writing stay off the runtime's threads: heartbeats go on.
                    let done = tokio::task::block_in_place(|| writer.chunk(offset, &bytes, last))?;
                    offset += bytes.len() as u64;
                    if let Some(p) = done {
                        tracing::info!(exe = %p.display(), bytes = offset, "executable cached");
                        self.exes.insert(hash)?;
                        return Ok(p);
                    }
                }
                Message::Failed { error } => return Err(error),
                other => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("the head answered FetchExe with a {} message", other.name()),
                    ))
                }
            }
        }
    }
}
