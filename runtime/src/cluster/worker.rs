//! Worker mode: a user executable started by a node to run tasks.
//!
//! A node starts workers from the job's cached executable with `RAYKIT_WORKER_NODE` set. Every
//! `#[raykit::remote]` expansion registers [`worker_entry`] to run before `main`, so a worker
//! never runs the user's `main`: it connects to its node, runs the tasks it is sent and exits.
//!
//! The worker's own thread runs the user's functions, outside any async runtime (user code may
//! block); a small current-thread runtime is entered only to read and write the connection.

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::OnceLock;

use crate::actor::ActorId;
use crate::cluster::node::arena::{ArenaLocation, ArenaView, ARENA_MIN_VALUE};
use crate::cluster::proto::{Connection, JobId, Message, Role, TaskId};
use crate::error::{Error, ErrorKind, Result};
use crate::registry::{Done, HostedActor};
use crate::runtime::NodeId;

/// The environment variable that puts a process in worker mode: its node's address.
pub const WORKER_NODE_ENV: &str = "RAYKIT_WORKER_NODE";
/// The job a worker belongs to.
pub const JOB_ENV: &str = "RAYKIT_JOB";
/// Where a worker finds its node's arena ([`ArenaLocation`] as JSON), to read large arguments
/// from shared memory.
pub const NODE_ARENA_ENV: &str = "RAYKIT_NODE_ARENA";

thread_local! {
    static CURRENT_TASK: Cell<Option<TaskId>> = const { Cell::new(None) };
}

/// In a worker process: the node it works for, set from the node's handshake before any task
/// runs.
pub static WORKER_NODE_ID: OnceLock<NodeId> = OnceLock::new();

/// The task this thread runs in a worker process, if any.
pub fn current_task() -> Option<TaskId> {
    CURRENT_TASK.with(|c| c.get())
}

/// In a worker process: the node it works for (from the node's handshake).
pub fn worker_node() -> Option<NodeId> {
    WORKER_NODE_ID.get().copied()
}

/// In a worker process: the job it works for.
pub fn worker_job() -> Option<JobId> {
    std::env::var(JOB_ENV).ok()?.parse().ok().map(JobId)
}

/// Runs before `main` in every program with remote functions (each `#[raykit::remote]`
/// registers it). It serves nothing itself: it may run before later functions of the program
/// are registered (constructors run in link order), so serving starts from this crate's own
/// constructor below, which the linker places after the program's.
pub fn worker_entry() {}

// The program's objects come before this library's on the link line, so this constructor runs
// after every `#[raykit::remote]` registration of the program (and of the libraries that depend
// on raykit), with the registry complete.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static RAYKIT_WORKER_MAIN: extern "C" fn() = {
    extern "C" fn raykit_worker_main() {
        serve_if_worker();
    }
    raykit_worker_main
};

/// In a worker process (the environment names its node): serves tasks, then exits the
/// process. Otherwise returns at once.
fn serve_if_worker() {
    let Ok(node) = std::env::var(WORKER_NODE_ENV) else {
        return;
    };
    init_logging();
    match serve(&node) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            tracing::error!(node = %node, pid = std::process::id(), "worker failed: {e}");
            std::process::exit(1);
        }
    }
}

/// Worker logs go to stderr at `RAYKIT_LOG`, default warnings: like what the worker's tasks
/// print there, into the worker's log file on its node and on to its driver.
fn init_logging() {
    let level = std::env::var("RAYKIT_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(tracing::Level::WARN);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Connects to the node and runs tasks until the node closes the connection.
fn serve(node: &str) -> Result<()> {
    let token = std::env::var("RAYKIT_TOKEN").unwrap_or_default();
    let job_id = worker_job().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            format!("{JOB_ENV} is not set to a job number"),
        )
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::System,
                format!("cannot start the worker's runtime: {e}"),
            )
        })?;
    let mut conn = rt.block_on(async {
        let (mut conn, welcome) = Connection::connect(node, &token, Role::Worker).await?;
        let _ = WORKER_NODE_ID.set(welcome.node_id);
        conn.send(&Message::WorkerReady {
            job_id,
            pid: std::process::id(),
            shared_memory: node_arena().is_some(),
        })
        .await?;
        Ok::<_, Error>(conn)
    })?;
    // Arguments the node put in its arena for the next message.
    let mut shared = None;
    loop {
        let msg = match rt.block_on(conn.recv_values()) {
            Ok(Message::SharedValue {
                task_id,
                index: 0,
                offset,
                len,
            }) => {
                shared = Some((task_id, offset, len));
                continue;
            }
            Ok(m) => m,
            // The node closed the connection: it no longer needs this worker.
            Err(e) if e.kind() == ErrorKind::Network => return Ok(()),
            // A malformed message or piece: the task it was for cannot run. Tell the node why
            // (it fails the task and discards this worker) rather than only dying.
            Err(e) => {
                let _ = rt.block_on(conn.send(&Message::Failed { error: e.clone() }));
                return Err(e);
            }
        };
        let (task_id, function, signature_hash, args) = match msg {
            Message::RunTask {
                task_id,
                function,
                signature_hash,
                args,
            } => (task_id, function, signature_hash, args),
            // From now on this process serves one actor only.
            Message::HostActor {
                actor_id,
                class,
                signature_hash,
                args,
                max_concurrency,
            } => {
                let hosted = match tuple(shared.take(), TaskId(0), args) {
                    Ok(args) => crate::registry::lookup_actor(&class, signature_hash)
                        .and_then(|c| c.host(&args, max_concurrency)),
                    Err(e) => {
                        let _ = rt.block_on(conn.send(&Message::Failed { error: e.clone() }));
                        return Err(e);
                    }
                };
                return serve_actor(&rt, conn, actor_id, hosted);
            }
            other => {
                tracing::warn!("ignoring a {} message from the node", other.name());
                continue;
            }
        };
        let args = match tuple(shared.take(), task_id, args) {
            Ok(args) => args,
            Err(e) => {
                let _ = rt.block_on(conn.send(&Message::Failed { error: e.clone() }));
                return Err(e);
            }
        };
        let result = run_task(task_id, &function, signature_hash, &args);
        drop(args);
        let (answer, mut outputs) = with_values_apart(Message::TaskResult { task_id, result });
        rt.block_on(async {
            share_outputs(&mut conn, task_id, &mut outputs).await?;
            conn.send_with_values(&answer, &outputs).await
        })?;
    }
}

/// Writes the large outputs of `task_id` into blocks of the node's arena, each asked for with
/// [`Message::AllocValue`], and names them with [`Message::SharedValue`]s (their slots in
/// `outputs` become empty). Outputs the node finds no room for stay, to go in pieces.
async fn share_outputs(
    conn: &mut Connection,
    task_id: TaskId,
    outputs: &mut [Vec<u8>],
) -> Result<()> {
    let Some(view) = node_arena() else {
        return Ok(());
    };
    for (index, output) in outputs.iter_mut().enumerate() {
        if output.len() < ARENA_MIN_VALUE {
            continue;
        }
        let index = u32::try_from(index)
            .map_err(|_| Error::new(ErrorKind::System, "a task with too many outputs"))?;
        let len = output.len() as u64;
        conn.send(&Message::AllocValue {
            task_id,
            index,
            len,
        })
        .await?;
        let offset = match conn.recv().await? {
            Message::ValueAllocated {
                task_id: t,
                index: i,
                offset,
            } if t == task_id && i == index => offset,
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "the node answered AllocValue with a {} message",
                        other.name()
                    ),
                ))
            }
        };
        let Some(offset) = offset else { continue };
        // SAFETY: the node allocated this block for this output alone and reads it only after
        // the SharedValue below.
        let block = unsafe { view.block_mut(offset, output.len()) }?;
        block.copy_from_slice(output);
        conn.feed(&Message::SharedValue {
            task_id,
            index,
            offset,
            len,
        })
        .await?;
        *output = Vec::new();
    }
    Ok(())
}

/// `msg` with its values taken out, to send with
/// [`send_with_values`](crate::cluster::proto::FrameWriter::send_with_values) (large outputs in
/// pieces); only a task's outputs have any.
fn with_values_apart(msg: Message) -> (Message, Vec<Vec<u8>>) {
    match msg {
        Message::TaskResult {
            task_id,
            result: Ok(outputs),
        } => (
            Message::TaskResult {
                task_id,
                result: Ok(Vec::new()),
            },
            outputs,
        ),
        other => (other, Vec::new()),
    }
}

/// The argument tuple: the concatenation of the arguments, which a single argument (or
/// arguments that came in pieces, as one value) already is, without a copy.
fn joined(mut args: Vec<Vec<u8>>) -> Vec<u8> {
    if args.len() == 1 {
        args.pop().unwrap_or_default()
    } else {
        args.concat()
    }
}

/// This worker's view of its node's arena, when the node named one and it could be mapped.
fn node_arena() -> Option<&'static ArenaView> {
    static VIEW: OnceLock<Option<ArenaView>> = OnceLock::new();
    VIEW.get_or_init(|| {
        let json = std::env::var(NODE_ARENA_ENV).ok()?;
        let location: ArenaLocation = serde_json::from_str(&json)
            .inspect_err(|e| tracing::warn!("{NODE_ARENA_ENV} is not an arena: {e}"))
            .ok()?;
        ArenaView::attach(&location)
            .inspect_err(|e| tracing::warn!("large arguments come over the connection: {e}"))
            .ok()
    })
    .as_ref()
}

/// The argument tuple of the message of `task_id`: from the node's arena when a
/// [`Message::SharedValue`] came before it (then `args` is one empty slot), else the message's
/// own `args`.
fn tuple(
    shared: Option<(TaskId, u64, u64)>,
    task_id: TaskId,
    args: Vec<Vec<u8>>,
) -> Result<Cow<'static, [u8]>> {
    let Some((shared_task, offset, len)) = shared else {
        return Ok(Cow::Owned(joined(args)));
    };
    if shared_task != task_id || args.iter().any(|a| !a.is_empty()) {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "shared arguments of task {shared_task} came before a message of task {task_id} with its own"
            ),
        ));
    }
    let view = node_arena().ok_or_else(|| {
        Error::new(
            ErrorKind::Protocol,
            "the node sent arguments through an arena this worker did not map",
        )
    })?;
    // SAFETY: the node keeps these bytes unchanged until this worker answers the message they
    // came for; the worker reads them only before answering (a task runs to its end first; an
    // actor call decodes them in `call`).
    unsafe { view.block(offset, len) }.map(Cow::Borrowed)
}

/// Serves the actor this process hosts: tells the node how `new` went, then hands each call
/// to the actor (which runs them in order, on the runtime's threads) and sends each result as
/// it comes. Ends when the node says stop (after the calls already sent) or goes away.
/// How long a stopped actor's process waits, once its calls are answered, for the actor's
/// state to be dropped (a killed one's node kills it after `KILLED_ACTOR_GRACE`, in
/// executor/actors.rs, anyway).
const KILLED_STATE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

fn serve_actor(
    rt: &tokio::runtime::Runtime,
    conn: Connection,
    actor_id: ActorId,
    hosted: Result<Box<dyn HostedActor>>,
) -> Result<()> {
    let (mut reader, mut writer) = conn.split();
    let hosted = match hosted {
        Ok(h) => h,
        Err(e) => {
            let answer = Message::ActorHosted {
                actor_id,
                result: Err(e),
            };
            return rt.block_on(writer.send(&answer));
        }
    };
    let answer = Message::ActorHosted {
        actor_id,
        result: Ok(()),
    };
    rt.block_on(writer.send(&answer))?;
    let (results, mut queued) = tokio::sync::mpsc::unbounded_channel::<Message>();
    // Answers from the runtime's threads, many per write when they come fast.
    let writing = rt.spawn(async move {
        while let Some(msg) = queued.recv().await {
            let (msg, outputs) = with_values_apart(msg);
            writer.feed_with_values(&msg, &outputs).await?;
            // Sent: free them before taking the next answers, which may be large too.
            drop(outputs);
            while let Ok(more) = queued.try_recv() {
                let (more, outputs) = with_values_apart(more);
                writer.feed_with_values(&more, &outputs).await?;
            }
            writer.flush().await?;
        }
        // Handed back, not dropped: closing it tells the node this process is done.
        Ok::<_, Error>(writer)
    });
    let mut failure = None;
    let mut shared = None;
    let mut state_gone = None;
    // A method that calls exit_actor: the node hears it after that call's answer, once.
    let exit_requested = hosted.exit_requested();
    loop {
        match rt.block_on(reader.recv_values()) {
            Ok(Message::SharedValue {
                task_id,
                index: 0,
                offset,
                len,
            }) => shared = Some((task_id, offset, len)),
            Ok(Message::RunActorCall {
                task_id,
                method,
                args,
            }) => {
                let args = match tuple(shared.take(), task_id, args) {
                    Ok(args) => args,
                    Err(e) => {
                        let _ = results.send(Message::Failed { error: e.clone() });
                        failure = Some(e);
                        break;
                    }
                };
                let results = results.clone();
                let exit_requested = exit_requested.clone();
                let done: Done = Box::new(move |result| {
                    let _ = results.send(Message::TaskResult { task_id, result });
                    if exit_requested() {
                        let _ = results.send(Message::ActorExiting {
                            actor_id,
                            incarnation: 0,
                        });
                    }
                });
                hosted.call(&method, &args, done);
            }
            // Killed: the calls fail at once; the state goes once no call runs (the node kills
            // this process if one does not end soon).
            // Stopped: the calls already queued still run. Either way the process waits for
            // the actor's state to go before it exits.
            Ok(Message::StopActor { kill, .. }) => {
                state_gone = Some(hosted.state_gone());
                if kill {
                    hosted.kill();
                }
                break;
            }
            Ok(other) => tracing::warn!("ignoring a {} message from the node", other.name()),
            // The node is gone: nobody will read the answers.
            Err(e) if e.kind() == ErrorKind::Network => return Ok(()),
            // A malformed call or piece: tell the node why (it kills this worker and fails the
            // actor's calls), after the answers already queued.
            Err(e) => {
                let _ = results.send(Message::Failed { error: e.clone() });
                failure = Some(e);
                break;
            }
        }
    }
    // The calls already queued still run; then the actor is dropped and the last sender with
    // it, which ends the writer.
    drop(hosted);
    drop(results);
    let writer = rt
        .block_on(writing)
        .map_err(|e| Error::new(ErrorKind::System, format!("the answer writer failed: {e}")))??;
    // The last answer is out as soon as the last call hands it over, a moment before that
    // call lets go of the state. The connection stays open until the state is gone: the node
    // ends this process when it closes, and the state's drop must have run by then.
    if let Some(mut gone) = state_gone {
        let deadline = std::time::Instant::now() + KILLED_STATE_WAIT;
        while !gone() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    drop(writer);
    failure.map_or(Ok(()), Err)
}

/// Runs one task on this thread: the arguments, encoded one by one, decode as their tuple.
fn run_task(
    task_id: TaskId,
    function: &str,
    signature_hash: u64,
    encoded: &[u8],
) -> Result<Vec<Vec<u8>>> {
    let f = crate::registry::lookup(function, signature_hash)?;
    CURRENT_TASK.with(|c| c.set(Some(task_id)));
    let result = f.invoke(encoded);
    CURRENT_TASK.with(|c| c.set(None));
    // A task that ended while it had lent its CPU for an await: its end frees its resources.
    crate::local::forget_lent_for_await();
    result
}
