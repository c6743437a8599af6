//! Serving one driver (or a worker's nested client): its job opened, the executable upload,
//! then its tasks, actors, puts, watches and releases until it leaves or the head stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::exes::ExeWriter;
use super::pump::pump;
use super::scheduler::ConnId;
use super::Head;
use crate::cluster::node::arena::{Block, Lent};
use crate::cluster::output::OutputQueue;
use crate::cluster::proto::{
    ChunkAssembler, Connection, FrameReader, JobId, Message, Role, INLINE_MAX,
};
use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;

/// How many object ids of one release (or escape) message the head handles before it lets
/// other connections in.
const ID_SLICE: usize = 4096;

impl Head {
    /// Serves a driver (or a worker's nested client) from its `RegisterJob` / `AttachJob` on:
    /// the executable upload, then tasks, puts and watches until it leaves or `shutdown`.
    pub async fn serve_driver(
        &self,
        mut conn: Connection,
        first: Message,
        role: Role,
        shutdown: &CancellationToken,
    ) {
        let peer = conn.peer_addr();
        let (job_id, need_exe, owner) = match self.open_job(first) {
            Ok(j) => j,
            Err(error) => {
                tracing::warn!(%peer, "job refused: {error}");
                let _ = conn.send(&Message::Failed { error }).await;
                return;
            }
        };
        let (exe_hash, namespace, node_totals) = {
            let t = self.tables.lock();
            match t.jobs.jobs.get(&job_id.0) {
                Some(j) => (
                    j.exe_hash.clone(),
                    j.namespace.clone(),
                    t.sched.node_totals(),
                ),
                None => return,
            }
        };
        if let Err(e) = conn
            .send(&Message::JobRegistered {
                job_id,
                need_exe,
                arena: self.store.arena().map(|a| a.location().clone()),
                namespace,
                node_totals,
            })
            .await
        {
            tracing::debug!(%peer, "connection ended: {e}");
            self.close_job(job_id, owner);
            return;
        }
        let (mut reader, writer) = conn.split();
        let (outbox, rx) = mpsc::unbounded_channel();
        // The job's worker output, if its driver asks for it.
        let output = owner.then(|| Arc::new(OutputQueue::default()));
        let pump = tokio::spawn(pump(writer, rx, output.clone()));
        let conn_id = self.tables.lock().sched.add_conn(outbox.clone(), job_id);
        tracing::info!(%peer, job = %job_id, ?role, "driver connected");
        let output = output.map(|queue| (job_id, queue));
        self.driver_loop(&mut reader, &outbox, conn_id, &exe_hash, output, shutdown)
            .await;
        if owner {
            self.relay.lock().unsubscribe(job_id);
        }
        self.tables.lock().sched.remove_conn(conn_id);
        self.close_job(job_id, owner);
        drop(outbox);
        let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
        tracing::info!(%peer, job = %job_id, "driver disconnected");
    }

    async fn driver_loop(
        &self,
        reader: &mut FrameReader,
        outbox: &mpsc::UnboundedSender<Message>,
        conn_id: ConnId,
        exe_hash: &str,
        output: Option<(JobId, Arc<OutputQueue>)>,
        shutdown: &CancellationToken,
    ) {
        let peer = reader.peer_addr();
        let mut upload = ExeWriter::new(self.exes.dir(), exe_hash);
        // A large put arriving in pieces.
        let mut put: Option<ChunkAssembler> = None;
        // Arena blocks the driver is writing puts into, by object (kept a while if it leaves
        // first: it may still be writing).
        let mut writing: Lent<ObjectId> = Lent::default();
        loop {
            let msg = tokio::select! {
                m = reader.recv() => m,
                _ = shutdown.cancelled() => return,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) if e.kind() == ErrorKind::Network => {
                    tracing::debug!(%peer, "connection ended: {e}");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%peer, "closing the connection: {error}");
                    let _ = outbox.send(Message::Failed { error });
                    return;
                }
            };
            match msg {
                Message::UploadExe {
                    offset,
                    bytes,
                    last,
                } => {
                    let result = tokio::task::block_in_place(|| upload.chunk(offset, &bytes, last));
                    match result {
                        Ok(Some(path)) => {
                            tracing::info!(exe = %path.display(), "executable stored");
                            if let Err(e) = self.exes.insert(exe_hash) {
                                tracing::warn!("counting a stored executable: {e}");
                            }
                            let _ = outbox.send(Message::ExeStored);
                        }
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(%peer, "executable upload failed: {error}");
                            upload = ExeWriter::new(self.exes.dir(), exe_hash);
                            let _ = outbox.send(Message::Failed { error });
                        }
                    }
                }
                Message::SubmitTask(task) => {
                    let mut t = self.tables.lock();
                    let job_exe = t.jobs.jobs.get(&task.job_id.0).map(|j| j.exe_hash.clone());
                    match job_exe {
                        Some(hash) => t.sched.submit(conn_id, task, hash),
                        None => {
                            let error = Error::new(
                                ErrorKind::Config,
                                format!("{} is not a job of this cluster", task.job_id),
                            );
                            for id in task.outputs {
                                let _ = outbox.send(Message::ObjectFailed {
                                    id,
                                    error: error.clone(),
                                });
                            }
                        }
                    }
                }
                Message::CreateActor(creation) => {
                    let mut t = self.tables.lock();
                    let job_exe = t
                        .jobs
                        .jobs
                        .get(&creation.job_id.0)
                        .map(|j| j.exe_hash.clone());
                    match job_exe {
                        Some(hash) => t.sched.create_actor(conn_id, *creation, hash),
                        None => {
                            tracing::warn!(%peer, job = %creation.job_id, "an actor of an unknown job; ignored")
                        }
                    }
                }
                Message::SubmitActorCall { actor_id, task } => self
                    .tables
                    .lock()
                    .sched
                    .submit_call(conn_id, actor_id, task),
                Message::KillActor { actor_id } => self.tables.lock().sched.kill_actor(actor_id),
                Message::ReleaseActor { actor_id } => {
                    self.tables.lock().sched.release_actor(conn_id, actor_id)
                }
                Message::EscapedActor { actor_id } => {
                    self.tables.lock().sched.escape_actor(actor_id)
                }
                Message::GetActor { namespace, name } => {
                    let actor = self.tables.lock().sched.named_actor(&namespace, &name);
                    let _ = outbox.send(Message::ActorFound {
                        namespace,
                        name,
                        actor,
                    });
                }
                Message::ListNamedActors => {
                    let names = self.tables.lock().sched.named_actors();
                    let _ = outbox.send(Message::NamedActors { names });
                }
                Message::PutObject { id, bytes } => {
                    let inline = (bytes.len() < INLINE_MAX).then(|| bytes.clone());
                    self.store.put(id, bytes);
                    self.tables.lock().sched.put(conn_id, id, inline);
                }
                Message::ObjectChunk {
                    id,
                    offset,
                    total,
                    bytes,
                } => {
                    let added = match put.as_mut() {
                        Some(a) => a.add(id, offset, total, &bytes),
                        None => ChunkAssembler::new(id, total)
                            .and_then(|a| put.insert(a).add(id, offset, total, &bytes)),
                    };
                    drop(bytes);
                    match added {
                        Ok(false) => {}
                        Ok(true) => {
                            if let Some(a) = put.take() {
                                self.store.put(id, a.finish());
                                self.tables.lock().sched.put(conn_id, id, None);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%peer, "closing the connection: {error}");
                            let _ = outbox.send(Message::ObjectFailed {
                                id,
                                error: error.clone(),
                            });
                            let _ = outbox.send(Message::Failed { error });
                            return;
                        }
                    }
                }
                Message::AllocObject { id, len } => {
                    // A second block for an object still being written gets none: the first
                    // stays lent to its writer.
                    let block = if writing.is_lent(&id) {
                        None
                    } else {
                        self.store.arena().and_then(|a| a.alloc(len))
                    };
                    let offset = block.as_ref().map(Block::offset);
                    if let Some(block) = block {
                        writing.lend(id, block);
                    }
                    let _ = outbox.send(Message::ObjectAllocated { id, offset });
                }
                Message::SealObject { id } => match writing.take(&id) {
                    Some(block) => {
                        self.store.put_block(id, block);
                        self.tables.lock().sched.put(conn_id, id, None);
                    }
                    None => {
                        let error = Error::new(
                            ErrorKind::Protocol,
                            format!("SealObject for object {id}, which has no block"),
                        );
                        tracing::warn!(%peer, "{error}");
                        let _ = outbox.send(Message::ObjectFailed { id, error });
                    }
                },
                Message::WatchObject { id } => self.tables.lock().sched.watch(conn_id, id),
                // A program that drops refs fast sends them merged: take the lock a slice at a
                // time and let the other connections (heartbeats) in between.
                Message::ReleaseObjects { ids } => {
                    for slice in ids.chunks(ID_SLICE) {
                        self.tables.lock().sched.release(conn_id, slice);
                        tokio::task::yield_now().await;
                    }
                }
                Message::EscapedObjects { ids } => {
                    for slice in ids.chunks(ID_SLICE) {
                        self.tables.lock().sched.escape(slice);
                        tokio::task::yield_now().await;
                    }
                }
                Message::ObjectUnreachable { id, location } => {
                    self.tables.lock().sched.object_unreachable(id, &location)
                }
                Message::TaskBlocked { task_id } => self.tables.lock().sched.task_blocked(task_id),
                Message::TaskUnblocked { task_id } => {
                    self.tables.lock().sched.task_unblocked(task_id)
                }
                Message::FetchObject { id } => {
                    let answer = match self.store.get(id) {
                        Some(bytes) => Message::ObjectData {
                            id,
                            bytes: bytes.to_vec(),
                        },
                        None => Message::Failed {
                            error: Error::new(
                                ErrorKind::ObjectLost,
                                format!("object {id} is not stored on the head's node"),
                            ),
                        },
                    };
                    let _ = outbox.send(answer);
                }
                Message::StatusRequest => {
                    let _ = outbox.send(Message::Status(self.status()));
                }
                Message::Ping => {
                    let _ = outbox.send(Message::Pong);
                }
                // Only the driver that started the job takes its output.
                Message::ForwardOutput => match &output {
                    Some((job, queue)) => self.relay.lock().subscribe(*job, queue.clone()),
                    None => {
                        tracing::debug!(%peer, "ForwardOutput from a job's other process; ignored")
                    }
                },
                Message::DrainOutput { seq, .. } => {
                    if let Some((job, _)) = &output {
                        self.relay.lock().drain(*job, seq);
                    }
                }
                other => {
                    let error = Error::new(
                        ErrorKind::Protocol,
                        format!("unexpected {} message from a driver", other.name()),
                    );
                    tracing::warn!(%peer, "closing the connection: {error}");
                    let _ = outbox.send(Message::Failed { error });
                    return;
                }
            }
        }
    }
}
