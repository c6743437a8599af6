//! Joining the cluster: the handshake with the head, registering a job (uploading this
//! program's executable when the head lacks it) or attaching to a worker's, and starting the
//! tasks that write to and read from the head. A program without a token learns why it
//! cannot join.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::drain::drain_at_exit;
use super::reader::{head_timeout, read_head, watch_head};
use super::writer::{write_head, Outgoing};
use super::{shared, Client, CLIENT};
use crate::cluster::node::arena::ArenaLocation;
use crate::cluster::node::exe;
use crate::cluster::output::printer::Printer;
use crate::cluster::peers::PeerPool;
use crate::cluster::proto::{Connection, JobId, Message, Role, EXE_CHUNK};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::NodeId;

impl Client {
    /// Joins the cluster at `address`: registers a job (uploading this executable if the head
    /// lacks it) whose named actors live in `namespace`, or attaches to the job of the worker
    /// this process is (and takes that job's namespace).
    pub(crate) fn connect(
        address: &str,
        token: Option<String>,
        namespace: &str,
    ) -> Result<Arc<Client>> {
        let token = match token {
            Some(t) => t,
            None => return Err(no_token_error(address)),
        };
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("raykit-client")
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorKind::System, format!("cannot start the client: {e}")))?;
        let handle = io.handle().clone();
        // `init` may be called from inside the user's own async runtime, where blocking on
        // another runtime is not allowed: join from a plain thread.
        let joined = std::thread::scope(|s| {
            s.spawn(|| handle.block_on(join(address, &token, namespace)))
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::System,
                        "joining the cluster panicked",
                    ))
                })
        })?;
        let Joined {
            job_id,
            head_node,
            conn,
            arena,
            namespace,
            node_totals,
        } = joined;
        let arena = shared::attach(arena.as_ref());
        let (reader, writer) = conn.split();
        let (outbox, rx) = mpsc::unbounded_channel::<Outgoing>();
        // A driver (not a worker's nested client) prints its workers' output; the request to
        // send it goes first, before any task can run.
        let output = if attached_job().is_none() && crate::cluster::output::log_to_driver() {
            match Printer::start() {
                Ok(printer) => {
                    let _ = outbox.send(Outgoing::Message(Message::ForwardOutput));
                    Some(printer)
                }
                Err(e) => {
                    tracing::warn!(
                        "worker output is not printed here: cannot start its thread: {e}"
                    );
                    None
                }
            }
        } else {
            None
        };
        let client = Arc::new(Client {
            job_id,
            namespace,
            node_totals: parking_lot::RwLock::new(node_totals),
            head_node,
            io: Some(io),
            handle: handle.clone(),
            outbox,
            awaited: Mutex::new(crate::cluster::IdMap::default()),
            peers: PeerPool::new(Role::Driver, token, None),
            unreachable: Mutex::new(crate::cluster::IdMap::default()),
            lost: AtomicBool::new(false),
            named: Mutex::new(HashMap::new()),
            name_lists: Mutex::new(Default::default()),
            puts: Arc::default(),
            arena,
            allocations: Mutex::new(HashMap::new()),
            heard_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
            named_functions: Mutex::new(Default::default()),
            status_waiters: Mutex::new(Default::default()),
            output: output.clone(),
            drains: AtomicU64::new(0),
        });
        let puts = client.puts.clone();
        handle.spawn(write_head(rx, writer, puts));
        *CLIENT.lock() = Arc::downgrade(&client);
        if output.is_some() {
            drain_at_exit();
        }
        handle.spawn(read_head(Arc::downgrade(&client), reader, output));
        handle.spawn(watch_head(Arc::downgrade(&client), head_timeout()));
        tracing::debug!(%address, job = %job_id, "joined the cluster");
        Ok(client)
    }
}

/// The job this process attaches to: a worker's, whose nested tasks belong to its job.
fn attached_job() -> Option<JobId> {
    std::env::var(crate::cluster::worker::JOB_ENV)
        .ok()
        .and_then(|j| j.parse::<u64>().ok())
        .map(JobId)
}

/// What joining the cluster gives: the job, the head's node, the connection, the head node's
/// arena (when shared here) and the job's namespace.
struct Joined {
    job_id: JobId,
    head_node: NodeId,
    conn: Connection,
    arena: Option<ArenaLocation>,
    namespace: String,
    node_totals: Vec<BTreeMap<String, i64>>,
}

/// Handshakes with the head and registers (or attaches to) the job.
async fn join(address: &str, token: &str, namespace: &str) -> Result<Joined> {
    let (mut conn, welcome) = Connection::connect(address, token, Role::Driver).await?;
    let timeout = Duration::from_secs(30);
    let registered = match attached_job() {
        Some(job_id) => {
            conn.request(&Message::AttachJob { job_id }, timeout)
                .await?
        }
        None => {
            let exe_path = std::env::current_exe().map_err(|e| {
                Error::new(
                    ErrorKind::System,
                    format!("cannot find this program's executable: {e}"),
                )
            })?;
            let exe_hash = exe::hash_file(&exe_path)?;
            let bytes = std::fs::read(&exe_path).map_err(|e| {
                Error::new(
                    ErrorKind::System,
                    format!("cannot read {}: {e}", exe_path.display()),
                )
            })?;
            let name = exe_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let answer = conn
                .request(
                    &Message::RegisterJob {
                        exe_hash,
                        exe_size: bytes.len() as u64,
                        name,
                        namespace: namespace.to_owned(),
                    },
                    timeout,
                )
                .await?;
            if let Message::JobRegistered { need_exe: true, .. } = &answer {
                upload(&mut conn, &bytes).await?;
            }
            answer
        }
    };
    match registered {
        Message::JobRegistered {
            job_id,
            arena,
            namespace,
            node_totals,
            ..
        } => Ok(Joined {
            job_id,
            head_node: welcome.node_id,
            conn,
            arena,
            namespace,
            node_totals,
        }),
        Message::Failed { error } => Err(error),
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("the head answered a job registration with {}", other.name()),
        )),
    }
}

/// Sends the executable in chunks and waits for the head to confirm it.
async fn upload(conn: &mut Connection, bytes: &[u8]) -> Result<()> {
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(EXE_CHUNK).collect()
    };
    let last = chunks.len() - 1;
    let mut offset = 0u64;
    for (i, chunk) in chunks.into_iter().enumerate() {
        conn.send(&Message::UploadExe {
            offset,
            bytes: chunk.to_vec(),
            last: i == last,
        })
        .await?;
        offset += chunk.len() as u64;
    }
    match conn.recv_timeout(Duration::from_secs(60)).await? {
        Message::ExeStored => Ok(()),
        Message::Failed { error } => Err(error),
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("the head answered an upload with {}", other.name()),
        )),
    }
}

/// Why a program told `address` but no token cannot join: nothing listens there (a wrong port,
/// a head that is down), or the cluster there is not the one this host recorded.
fn no_token_error(address: &str) -> Error {
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = address
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    if addrs.is_empty() {
        return Error::new(
            ErrorKind::Config,
            format!("`{address}` is no HOST:PORT this host can resolve"),
        );
    }
    let mut refused = None;
    for a in &addrs {
        match std::net::TcpStream::connect_timeout(a, Duration::from_secs(2)) {
            Ok(_) => {
                refused = None;
                break;
            }
            Err(e) => refused = Some(e),
        }
    }
    if let Some(e) = refused {
        return Error::new(
            ErrorKind::Network,
            format!(
                "nothing answers at {address} ({e}): is the head running there? \
                 (`raykit status` shows this host's cluster)"
            ),
        );
    }
    let recorded = crate::cluster::records::read_cluster()
        .ok()
        .flatten()
        .map(|r| format!("; this host recorded the cluster at {}", r.address))
        .unwrap_or_default();
    Error::new(
        ErrorKind::Config,
        format!(
            "no token for the cluster at {address}: set RAYKIT_TOKEN or RAYKIT_TOKEN_FILE \
             (printed by `raykit start --head`){recorded}"
        ),
    )
}
