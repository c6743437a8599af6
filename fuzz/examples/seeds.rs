//! Writes the seed corpus of every fuzz target: real frames and streams, made by the runtime's
//! own encoders and connections, so that each target starts from what peers really send.
//!
//! Run from `fuzz/`: `cargo run --example seeds` (or `cargo run --example seeds -- DIR`). Each
//! `corpus/<target>/` directory is emptied and written again; the files are named for what
//! they hold.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use raykit::cluster::node::arena::ArenaLocation;
use raykit::cluster::proto::{
    encode_object_chunk, encode_object_data, ActorAssignment, ActorCallAssignment, ActorCounts,
    ActorCreation, ClusterStatus, Handshake, JobId, Message, NodeInfo, NodeLoad, NodeStatus,
    OutputBatch, OutputLine, Refusal, Role, StoredObject, TaskAssignment, TaskCounts, TaskId,
    TaskOutcome, TaskSubmission, Welcome, WireArg, PROTOCOL_VERSION,
};
use raykit::{Error, ErrorKind};
use raykit_fuzz::{__fuzz, actor_id, frame, node_id, object_id, FETCHED, TOKEN};

/// The variants of [`Message`]; every one has a seed.
const MESSAGE_VARIANTS: usize = 75;

/// How deep item 1's hostile frame nests its error (the original nested 21,000 times; the
/// shape is what matters, and a smaller seed keeps the corpus small).
const HOSTILE_DEPTH: usize = 1000;

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let mut total = 0;
    for (target, seeds) in [
        ("message", message_seeds()),
        ("error_chain", error_seeds()),
        ("handshake_frame", handshake_frame_seeds()),
        ("handshake_stream", handshake_stream_seeds()),
        ("chunk_header", chunk_header_seeds()),
        ("recv_values", recv_values_seeds()),
        ("fetch_object", fetch_object_seeds()),
        ("user_value", user_value_seeds()),
    ] {
        total += write(&root.join(target), &seeds);
    }
    println!("{total} bytes of seeds in {}", root.display());
}

/// Replaces `dir` with one file per seed; returns the bytes written.
fn write(dir: &Path, seeds: &[(String, Vec<u8>)]) -> usize {
    if dir.exists() {
        fs::remove_dir_all(dir).expect("remove the old seeds");
    }
    fs::create_dir_all(dir).expect("create the corpus directory");
    let mut names = std::collections::BTreeSet::new();
    for (name, bytes) in seeds {
        assert!(names.insert(name.clone()), "two seeds named {name}");
        fs::write(dir.join(name), bytes).expect("write a seed");
    }
    seeds.iter().map(|(_, b)| b.len()).sum()
}

fn encoded<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("encodes")
}

fn resources(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn panicked() -> Error {
    Error::new(
        ErrorKind::TaskPanicked,
        "remote function `examples::boom` panicked: boom",
    )
}

fn dependency_failed() -> Error {
    Error::with_source(
        ErrorKind::DependencyFailed,
        "`examples::add` could not run: its argument `a` failed: remote function \
         `examples::boom` panicked: boom",
        panicked(),
    )
}

fn submission(function: &str) -> TaskSubmission {
    TaskSubmission {
        task_id: TaskId((0x1234 << 64) | 7),
        job_id: JobId(3),
        function: function.into(),
        signature_hash: 0x0123_4567_89ab_cdef,
        args: vec![WireArg::Value(encoded(&41i64)), WireArg::Ref(object_id(10))],
        outputs: vec![object_id(11), object_id(12)],
        resources: resources(&[("CPU", 1.0), ("custom", 0.5)]),
        max_retries: 3,
        // As sent with a function's first submission on a connection.
        arg_names: Some(Box::new(vec!["a".into(), "b".into()])),
    }
}

fn node_info() -> NodeInfo {
    NodeInfo {
        node_id: node_id(42),
        address: "127.0.0.1:6380".into(),
        resources: resources(&[("CPU", 2.0), ("GPU", 0.0), ("custom", 4.0)]),
        pid: 4242,
    }
}

fn node_load() -> NodeLoad {
    NodeLoad {
        available: resources(&[("CPU", 1.5)]),
        tasks: TaskCounts {
            waiting: 4,
            running: 2,
            finished: 100,
            failed: 1,
        },
        actors: ActorCounts {
            pending: 0,
            alive: 1,
            restarting: 0,
            dead: 2,
        },
        objects: 5,
        object_bytes: 1 << 20,
    }
}

fn dead_node() -> NodeStatus {
    NodeStatus {
        info: node_info(),
        head: false,
        alive: false,
        death_reason: Some("no heartbeat for 10 s".into()),
        load: NodeLoad::default(),
        since_heartbeat_ms: 12_000,
    }
}

/// Two nodes' declared resources, in fixed-point units.
fn node_totals() -> Vec<BTreeMap<String, i64>> {
    vec![
        BTreeMap::from([("CPU".into(), 0), ("GPU".into(), 0)]),
        BTreeMap::from([("CPU".into(), 20_000), ("custom".into(), 10_000)]),
    ]
}

fn actor_creation() -> ActorCreation {
    ActorCreation {
        actor_id: actor_id(77),
        job_id: JobId(3),
        create: submission("examples::Counter::new"),
        class: "examples::Counter".into(),
        name: Some("counter".into()),
        namespace: "prod".into(),
        max_restarts: 1,
        max_concurrency: 1,
    }
}

fn task_assignment() -> TaskAssignment {
    TaskAssignment {
        task: submission("examples::add"),
        exe_hash: "ab".repeat(32),
        arg_locations: vec![None, Some("127.0.0.1:6380".into())],
        attempt: 1,
    }
}

/// One of every message, as the runtime builds them.
fn messages() -> Vec<Message> {
    let value: Vec<u8> = (0..40u8).collect();
    vec![
        Message::RegisterNode(node_info()),
        Message::Registered {
            head_node_id: node_id(1),
        },
        Message::Heartbeat(node_load()),
        Message::UnregisterNode,
        Message::StatusRequest,
        Message::Status(ClusterStatus {
            head_node_id: node_id(1),
            nodes: vec![
                NodeStatus {
                    info: node_info(),
                    head: true,
                    alive: true,
                    death_reason: None,
                    load: node_load(),
                    since_heartbeat_ms: 250,
                },
                dead_node(),
            ],
            tasks: node_load().tasks,
            actors: node_load().actors,
            jobs: 1,
            objects: 5,
            lineage: 2,
        }),
        Message::Stop,
        Message::Stopping,
        Message::Failed {
            error: dependency_failed(),
        },
        Message::RegisterJob {
            exe_hash: "cd".repeat(32),
            exe_size: 12_345_678,
            name: "examples-basic".into(),
            namespace: "prod".into(),
        },
        Message::AttachJob { job_id: JobId(3) },
        Message::JobRegistered {
            job_id: JobId(3),
            need_exe: true,
            arena: Some(ArenaLocation {
                boot_id: "6f1f8c8e-3c55-4d43-9a8e-2b1f4c7e9d10".into(),
                pid: 4242,
                fd: 7,
                device: 64_768,
                inode: 1_234_567,
                capacity: 1 << 30,
            }),
            namespace: "prod".into(),
            node_totals: node_totals(),
        },
        Message::UploadExe {
            offset: 4 << 20,
            bytes: b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec(),
            last: true,
        },
        Message::ExeStored,
        Message::FetchExe {
            exe_hash: "cd".repeat(32),
        },
        Message::ExeChunk {
            bytes: b"\x7fELF".to_vec(),
            last: false,
        },
        Message::SubmitTask(submission("examples::add")),
        Message::PutObject {
            id: object_id(20),
            bytes: value.clone(),
        },
        Message::WatchObject { id: object_id(20) },
        Message::ObjectReady {
            id: object_id(11),
            location: "127.0.0.1:6380".into(),
            inline: Some(encoded(&42i64)),
        },
        Message::ObjectFailed {
            id: object_id(12),
            error: panicked(),
        },
        Message::FetchObject { id: object_id(11) },
        Message::ObjectData {
            id: object_id(11),
            bytes: value.clone(),
        },
        Message::ExecuteTask(task_assignment()),
        Message::TaskFinished {
            task_id: TaskId(7),
            outcome: TaskOutcome::Stored(vec![StoredObject {
                id: object_id(11),
                size: 8,
                inline: Some(encoded(&42i64)),
            }]),
            next: Some(TaskId(8)),
        },
        Message::WorkerReady {
            job_id: JobId(3),
            pid: 4343,
            shared_memory: true,
        },
        Message::RunTask {
            task_id: TaskId(7),
            function: "examples::add".into(),
            signature_hash: 0x0123_4567_89ab_cdef,
            args: vec![encoded(&41i64), encoded(&1i64)],
        },
        Message::TaskResult {
            task_id: TaskId(7),
            result: Ok(vec![encoded(&42i64), Vec::new()]),
        },
        Message::TaskBlocked { task_id: TaskId(7) },
        Message::TaskUnblocked { task_id: TaskId(7) },
        Message::ReleaseObjects {
            ids: vec![object_id(11), object_id(12)],
        },
        Message::EscapedObjects {
            ids: vec![object_id(u128::MAX)],
        },
        Message::DeleteObjects {
            ids: vec![object_id(11)],
        },
        Message::ObjectChunk {
            id: object_id(11),
            offset: 128,
            total: 300,
            bytes: value.clone(),
        },
        Message::CreateActor(Box::new(actor_creation())),
        Message::SubmitActorCall {
            actor_id: actor_id(77),
            task: submission("examples::Counter::incr"),
        },
        Message::KillActor {
            actor_id: actor_id(77),
        },
        Message::ReleaseActor {
            actor_id: actor_id(77),
        },
        Message::EscapedActor {
            actor_id: actor_id(77),
        },
        Message::GetActor {
            namespace: "prod".into(),
            name: "counter".into(),
        },
        Message::ActorFound {
            namespace: "prod".into(),
            name: "counter".into(),
            actor: Some((actor_id(77), "examples::Counter".into())),
        },
        Message::ListNamedActors,
        Message::NodeTotals {
            totals: node_totals(),
        },
        Message::ActorExiting {
            actor_id: actor_id(77),
            incarnation: 2,
        },
        Message::NamedActors {
            names: vec![
                ("anonymous-1f2e3d4c5b6a7988".into(), "svc".into()),
                ("prod".into(), "counter".into()),
            ],
        },
        Message::StartActor(Box::new(ActorAssignment {
            actor: actor_creation(),
            incarnation: 2,
            exe_hash: "ab".repeat(32),
            arg_locations: vec![None],
        })),
        Message::ExecuteActorCall(Box::new(ActorCallAssignment {
            actor_id: actor_id(77),
            incarnation: 2,
            task: submission("examples::Counter::incr"),
            arg_locations: vec![Some("127.0.0.1:6380".into())],
        })),
        Message::StopActor {
            actor_id: actor_id(77),
            incarnation: 2,
            kill: true,
        },
        Message::ActorStarted {
            actor_id: actor_id(77),
            incarnation: 2,
            result: Ok(()),
        },
        Message::ActorExited {
            actor_id: actor_id(77),
            incarnation: 2,
            reason: "killed by signal 9".into(),
        },
        Message::HostActor {
            actor_id: actor_id(77),
            class: "examples::Counter".into(),
            signature_hash: 1 << 40,
            args: vec![encoded(&(5u64,))],
            max_concurrency: 300_000,
        },
        Message::ActorHosted {
            actor_id: actor_id(77),
            result: Err(panicked()),
        },
        Message::RunActorCall {
            task_id: TaskId(9),
            method: "incr".into(),
            args: vec![encoded(&5u64)],
        },
        Message::ValueChunk {
            task_id: TaskId(9),
            index: 1,
            offset: 0,
            total: 80,
            bytes: value,
        },
        Message::Ping,
        Message::Pong,
        Message::AllocObject {
            id: object_id(21),
            len: 64 << 20,
        },
        Message::ObjectAllocated {
            id: object_id(21),
            offset: Some(1 << 20),
        },
        Message::SealObject { id: object_id(21) },
        Message::SharedValue {
            task_id: TaskId(9),
            index: 0,
            offset: 4096,
            len: 8 << 20,
        },
        Message::AllocValue {
            task_id: TaskId(9),
            index: 1,
            len: 16 << 20,
        },
        Message::ValueAllocated {
            task_id: TaskId(9),
            index: 1,
            offset: None,
        },
        Message::HoldTask(task_assignment()),
        Message::StartTask { task_id: TaskId(7) },
        Message::CancelJob { job_id: JobId(3) },
        Message::ObjectUnreachable {
            id: object_id(11),
            location: "127.0.0.1:6380".into(),
        },
        Message::JoinNode {
            info: node_info(),
            incarnation: 3,
            fresh: true,
        },
        Message::Rejoin {
            incarnation: 4,
            reason: "declared dead: no heartbeat for 10 s".into(),
        },
        Message::DeadNodesRequest,
        Message::DeadNodes(vec![dead_node()]),
        Message::ForwardOutput,
        Message::WorkerOutput(output_batch()),
        Message::DrainOutput {
            job_id: JobId(3),
            seq: 1,
        },
        Message::OutputDrained {
            job_id: JobId(3),
            seq: 1,
        },
        Message::MuteOutput { job_id: JobId(3) },
    ]
}

/// Lines of a task and an actor on stdout and stderr, as a node sends them.
fn output_batch() -> OutputBatch {
    let line = |name: &str, stderr: bool, text: &str| OutputLine {
        pid: 4243,
        name: name.into(),
        stderr,
        text: text.into(),
    };
    OutputBatch {
        job_id: JobId(3),
        node_id: node_id(42),
        lines: vec![
            line("", true, "WARN starting"),
            line("add", false, "adding 1 and 2"),
            line("Counter", true, "incr: négatif \u{1b}[31m"),
        ],
        dropped: 2,
    }
}

/// Item 1 of the hardening issue: a `Failed` message whose error nests `depth` times in the
/// recursive encoding errors once had (kind 0, an empty message, then `Some` cause, ...).
fn hostile_failed(depth: usize) -> Vec<u8> {
    let mut bytes = Message::Failed { error: panicked() }
        .encode()
        .expect("encodes");
    bytes.truncate(1);
    bytes.extend_from_slice(&nested_error(depth));
    bytes
}

fn nested_error(depth: usize) -> Vec<u8> {
    let mut nested = Vec::with_capacity(3 * depth + 3);
    for _ in 0..depth {
        nested.extend_from_slice(&[0, 0, 1]);
    }
    nested.extend_from_slice(&[0, 0, 0]);
    nested
}

fn message_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for msg in messages() {
        let bytes = msg.encode().expect("encodes");
        let mut name = msg.name().to_owned();
        if seeds.iter().any(|(n, _)| *n == name) {
            name.push_str("-2");
        }
        seeds.push((name, bytes));
    }
    let names: std::collections::BTreeSet<_> = messages().iter().map(Message::name).collect();
    assert_eq!(
        names.len(),
        MESSAGE_VARIANTS,
        "a message variant has no seed"
    );
    let more = [
        Message::TaskFinished {
            task_id: TaskId(7),
            outcome: TaskOutcome::Failed {
                error: dependency_failed(),
                retryable: true,
            },
            next: None,
        },
        Message::TaskResult {
            task_id: TaskId(7),
            result: Err(panicked()),
        },
    ];
    for msg in more {
        seeds.push((
            format!("{}-failed", msg.name()),
            msg.encode().expect("encodes"),
        ));
    }
    seeds.push((
        "ObjectData-borrowed".into(),
        encode_object_data(object_id(11), &[7; 200]).expect("encodes"),
    ));
    seeds.push((
        "Failed-hostile-nesting".into(),
        hostile_failed(HOSTILE_DEPTH),
    ));
    seeds
}

fn error_seeds() -> Vec<(String, Vec<u8>)> {
    let mut long = panicked();
    for i in 0..40 {
        long = Error::with_source(ErrorKind::DependencyFailed, format!("level {i}"), long);
    }
    let mut seeds = vec![
        ("panicked".to_owned(), encoded(&panicked())),
        ("dependency-failed".into(), encoded(&dependency_failed())),
        ("chain-cut-to-16".into(), encoded(&long)),
        (
            "unicode".into(),
            encoded(&Error::new(ErrorKind::Config, "größe → ∞ ✓")),
        ),
        ("hostile-nesting".into(), nested_error(HOSTILE_DEPTH)),
    ];
    for kind in [
        ErrorKind::ObjectLost,
        ErrorKind::ActorDied,
        ErrorKind::Cancelled,
        ErrorKind::Network,
    ] {
        seeds.push((
            format!("{kind:?}"),
            encoded(&Error::new(kind, format!("{kind:?}"))),
        ));
    }
    seeds
}

fn handshake_frames() -> Vec<(String, Handshake)> {
    let mut frames = Vec::new();
    for role in [Role::Node, Role::Driver, Role::Worker, Role::Client] {
        frames.push((
            format!("Hello-{role:?}"),
            Handshake::Hello {
                version: PROTOCOL_VERSION,
                role,
                nonce: [0x5a; 32],
            },
        ));
    }
    frames.push((
        "Hello-old-version".into(),
        Handshake::Hello {
            version: PROTOCOL_VERSION - 1,
            role: Role::Driver,
            nonce: [1; 32],
        },
    ));
    frames.push((
        "Welcome".into(),
        Handshake::Welcome {
            welcome: Welcome {
                version: PROTOCOL_VERSION,
                node_id: node_id(1),
                head: true,
            },
            proof: [0xa5; 32],
        },
    ));
    for refusal in [
        Refusal::Unauthorized,
        Refusal::VersionMismatch,
        Refusal::Malformed,
        Refusal::TooLarge,
        Refusal::Timeout,
        Refusal::UnexpectedMessage,
        Refusal::RateLimited,
    ] {
        frames.push((
            format!("Refused-{refusal:?}"),
            Handshake::Refused {
                refusal,
                reason: format!("refused: {refusal:?}"),
            },
        ));
    }
    frames.push(("Challenge".into(), Handshake::Challenge { nonce: [3; 32] }));
    frames.push(("Proof".into(), Handshake::Proof { proof: [4; 32] }));
    frames
}

fn handshake_frame_seeds() -> Vec<(String, Vec<u8>)> {
    handshake_frames()
        .into_iter()
        .map(|(name, f)| (name, f.encode().expect("encodes")))
        .collect()
}

fn welcome() -> Welcome {
    Welcome {
        version: PROTOCOL_VERSION,
        node_id: node_id(1),
        head: true,
    }
}

fn framed(frame_: &Handshake) -> Vec<u8> {
    frame(&frame_.encode().expect("encodes"))
}

/// What a real connecting side writes when the daemon sends `answers`.
fn connecting_side_writes(answers: Vec<u8>) -> Vec<u8> {
    let (conn, written) = __fuzz::stream(answers, usize::MAX, false);
    let _ = __fuzz::block_on(conn.handshake("seed", TOKEN, Role::Driver));
    written.bytes()
}

/// What a real accepting side writes when the peer sends `input`.
fn accepting_side_writes(input: Vec<u8>) -> Vec<u8> {
    let (conn, written) = __fuzz::stream(input, usize::MAX, false);
    let refused = __fuzz::block_on(conn.accept_handshake(TOKEN, welcome()));
    assert!(refused.is_err());
    written.bytes()
}

fn with_control(control: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![control];
    out.extend_from_slice(bytes);
    out
}

fn handshake_stream_seeds() -> Vec<(String, Vec<u8>)> {
    let challenge = framed(&Handshake::Challenge { nonce: [3; 32] });
    // The connecting side's hello and proof for a real challenge.
    let client = connecting_side_writes(challenge.clone());
    let old = framed(&Handshake::Hello {
        version: PROTOCOL_VERSION - 1,
        role: Role::Node,
        nonce: [1; 32],
    });
    let mut seeds = vec![
        ("accept-hello-proof".to_owned(), with_control(0, &client)),
        (
            "accept-hello-proof-3-byte-reads".into(),
            with_control(3 << 1, &client),
        ),
        ("accept-old-version".into(), with_control(0, &old)),
        (
            "accept-proof-first".into(),
            with_control(0, &framed(&Handshake::Proof { proof: [4; 32] })),
        ),
    ];
    // The connecting side reading a challenge and a welcome, and what real daemons answer.
    let mut welcomed = challenge.clone();
    welcomed.extend_from_slice(&framed(&Handshake::Welcome {
        welcome: welcome(),
        proof: [0xa5; 32],
    }));
    seeds.push((
        "connect-challenge-welcome".into(),
        with_control(1, &welcomed),
    ));
    seeds.push((
        "connect-challenge-welcome-1-byte-reads".into(),
        with_control((1 << 1) | 1, &welcomed),
    ));
    seeds.push((
        "connect-unauthorized".into(),
        with_control(1, &accepting_side_writes(client)),
    ));
    seeds.push((
        "connect-version-mismatch".into(),
        with_control(1, &accepting_side_writes(old)),
    ));
    seeds
}

fn chunk_header_seeds() -> Vec<(String, Vec<u8>)> {
    let value: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let id = object_id(FETCHED);
    let chunk = |offset: usize, end: usize| {
        encode_object_chunk(id, offset as u64, 300, &value[offset..end]).expect("encodes")
    };
    vec![
        ("chunk-first".to_owned(), chunk(0, 128)),
        ("chunk-last".into(), chunk(256, 300)),
        (
            "chunk-large-fields".into(),
            encode_object_chunk(object_id(u128::MAX), u64::MAX - 3, u64::MAX, b"abc")
                .expect("encodes"),
        ),
        (
            "chunk-empty".into(),
            encode_object_chunk(id, 0, 0, &[]).expect("encodes"),
        ),
        (
            "FetchObject".into(),
            Message::FetchObject { id }.encode().expect("encodes"),
        ),
        (
            "ObjectData".into(),
            encode_object_data(id, &value[..40]).expect("encodes"),
        ),
    ]
}

fn chunk(task: u128, index: u32, offset: u64, total: u64, bytes: &[u8]) -> Message {
    Message::ValueChunk {
        task_id: TaskId(task),
        index,
        offset,
        total,
        bytes: bytes.to_vec(),
    }
}

/// What a real connection writes when it feeds `messages`, then sends `shell` with `values`.
fn written(messages: &[Message], shell: Option<(&Message, &[Vec<u8>])>) -> Vec<u8> {
    let (mut conn, written) = __fuzz::stream(Vec::new(), usize::MAX, true);
    __fuzz::block_on(async {
        for m in messages {
            conn.feed(m).await.expect("feeds");
        }
        if let Some((shell, values)) = shell {
            conn.send_with_values(shell, values)
                .await
                .expect("sends with values");
        }
        conn.flush().await.expect("flushes");
    });
    written.bytes()
}

fn recv_values_seeds() -> Vec<(String, Vec<u8>)> {
    let run = |args: Vec<Vec<u8>>| Message::RunTask {
        task_id: TaskId(1),
        function: "examples::add".into(),
        signature_hash: 9,
        args,
    };
    let result = |outputs: Vec<Vec<u8>>| Message::TaskResult {
        task_id: TaskId(1),
        result: Ok(outputs),
    };
    let host = |args: Vec<Vec<u8>>| Message::HostActor {
        actor_id: actor_id(77),
        class: "examples::Counter".into(),
        signature_hash: 3,
        args,
        max_concurrency: 1000,
    };
    let call = |args: Vec<Vec<u8>>| Message::RunActorCall {
        task_id: TaskId(1),
        method: "incr".into(),
        args,
    };
    let small = vec![encoded(&41i64), encoded(&1i64)];
    let pieces_run = written(
        &[
            chunk(1, 1, 0, 3, &[1, 1]),
            chunk(1, 1, 2, 3, &[1]),
            run(vec![vec![7], Vec::new()]),
        ],
        None,
    );
    let seeds = vec![
        (
            "RunTask-in-its-frame".to_owned(),
            with_control(0, &written(&[], Some((&run(Vec::new()), &small)))),
        ),
        (
            "TaskResult-in-its-frame".into(),
            with_control(0, &written(&[], Some((&result(Vec::new()), &small)))),
        ),
        (
            "HostActor-in-its-frame".into(),
            with_control(0, &written(&[], Some((&host(Vec::new()), &small)))),
        ),
        ("RunTask-in-pieces".into(), with_control(0, &pieces_run)),
        (
            "RunTask-in-pieces-5-byte-reads".into(),
            with_control(5, &pieces_run),
        ),
        (
            "TaskResult-in-pieces".into(),
            with_control(
                0,
                &written(
                    &[
                        chunk(1, 0, 0, 4, &[1, 2]),
                        chunk(1, 0, 2, 4, &[3, 4]),
                        chunk(1, 2, 0, 1, &[9]),
                        result(vec![Vec::new(), vec![5], Vec::new()]),
                    ],
                    None,
                ),
            ),
        ),
        (
            "HostActor-in-pieces".into(),
            with_control(
                0,
                &written(
                    &[
                        chunk(0, 0, 0, 6, &[1, 2, 3]),
                        chunk(0, 0, 3, 6, &[4, 5, 6]),
                        host(vec![Vec::new()]),
                    ],
                    None,
                ),
            ),
        ),
        (
            "RunActorCall-in-pieces".into(),
            with_control(
                0,
                &written(&[chunk(1, 0, 0, 2, &[5, 0]), call(vec![Vec::new()])], None),
            ),
        ),
        (
            "TaskResult-error-and-others".into(),
            with_control(
                0,
                &written(
                    &[
                        Message::TaskResult {
                            task_id: TaskId(1),
                            result: Err(dependency_failed()),
                        },
                        Message::Ping,
                        Message::Heartbeat(node_load()),
                        Message::Stop,
                    ],
                    None,
                ),
            ),
        ),
    ];
    // Each seed reads back without an error before the stream ends.
    for (name, input) in &seeds {
        let (mut conn, _) = __fuzz::stream(input[1..].to_vec(), usize::MAX, true);
        loop {
            match __fuzz::block_on(conn.recv_values()) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Network => break,
                Err(e) => panic!("seed {name}: {e}"),
            }
        }
    }
    seeds
}

fn fetch_object_seeds() -> Vec<(String, Vec<u8>)> {
    let id = object_id(FETCHED);
    let value: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let mut pieces = Vec::new();
    for (i, piece) in value.chunks(128).enumerate() {
        let offset = (i * 128) as u64;
        pieces.extend_from_slice(&frame(
            &encode_object_chunk(id, offset, 300, piece).expect("encodes"),
        ));
    }
    let (mut conn, data) = __fuzz::stream(Vec::new(), usize::MAX, true);
    __fuzz::block_on(conn.send_object(id, &value[..100])).expect("sends");
    let one_piece = {
        let (conn, written) = __fuzz::stream(Vec::new(), usize::MAX, true);
        let (_, mut writer) = conn.split();
        __fuzz::block_on(async {
            writer.feed_object_chunks(id, &value).await.expect("feeds");
            writer.flush().await.expect("flushes");
        });
        written.bytes()
    };
    let failed = frame(
        &Message::Failed {
            error: Error::new(ErrorKind::ObjectLost, format!("object {id} is not here")),
        }
        .encode()
        .expect("encodes"),
    );
    vec![
        ("ObjectData".to_owned(), with_control(0, &data.bytes())),
        ("pieces-assembled".into(), with_control(0, &pieces)),
        ("pieces-placed".into(), with_control(1, &pieces)),
        (
            "pieces-placed-7-byte-reads".into(),
            with_control((7 << 2) | 1, &pieces),
        ),
        (
            "pieces-wrong-buffer-1-byte-reads".into(),
            with_control((1 << 2) | 2, &pieces),
        ),
        ("one-piece-placed".into(), with_control(1, &one_piece)),
        ("Failed-object-lost".into(), with_control(0, &failed)),
    ]
}

/// A seed of `user_value`: the selector of `T` (see `raykit_fuzz::check_value`), then the
/// encoding of `value`.
fn user_value<T>(name: &str, selector: u8, value: &T) -> (String, Vec<u8>)
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let mut bytes = vec![selector];
    bytes.extend(__fuzz::encode_value(value).expect("a user value encodes"));
    (name.to_owned(), bytes)
}

fn user_value_seeds() -> Vec<(String, Vec<u8>)> {
    use raykit_fuzz::values::*;
    use serde_json::json;
    let sample = json!({
        "name": "raykit", "n": -3, "big": u64::MAX, "x": 0.5,
        "list": [null, true, "s", [1, [2]], {}], "nested": {"a": {"b": []}}
    });
    let mut nested = json!([]);
    for _ in 0..40 {
        nested = json!([nested]);
    }
    let mut list = List::Nil;
    for i in 0..40 {
        list = List::Cons(i, Box::new(list));
    }
    let mut seeds = vec![
        user_value("value", 0, &sample),
        user_value("value-nested", 0, &nested),
        user_value("bytes", 1, &vec![7u8; 64]),
        user_value(
            "plain",
            2,
            &Plain {
                id: 9,
                name: "p".into(),
                data: vec![1, 2, 3],
                pair: Some((-1, 2.5)),
                map: BTreeMap::from([("k".to_owned(), 4)]),
            },
        ),
        user_value("list", 3, &list),
        user_value("untagged-number", 4, &Loose::Number(-5)),
        user_value(
            "untagged-pair",
            4,
            &Loose::Pair {
                left: 1,
                right: vec!["r".into()],
            },
        ),
        user_value("internal-start", 5, &Event::Start { at: 3 }),
        user_value(
            "internal-stop",
            5,
            &Event::Stop {
                reason: "done".into(),
            },
        ),
        user_value("internal-ping", 5, &Event::Ping),
        user_value(
            "flattened",
            6,
            &Record {
                kind: "k".into(),
                rest: BTreeMap::from([("score".to_owned(), json!(1.5))]),
            },
        ),
        user_value(
            "tree",
            7,
            &Tree::Node(vec![
                Tree::Leaf(json!(1)),
                Tree::Node(vec![Tree::Leaf(sample.clone())]),
            ]),
        ),
        user_value(
            "mixed",
            8,
            &(
                "s".to_owned(),
                Some(vec![json!(null), json!("v")]),
                u128::MAX,
                [1u8, 2, 3, 4],
            ),
        ),
    ];
    // Hostile: MessagePack arrays nested far past the limit, and a postcard list as long.
    // The selector of `Value`, the MessagePack format, then the payload's length as a varint.
    let mut deep = vec![0u8, 1];
    let payload: Vec<u8> = std::iter::repeat_n(0x91, 2000).chain([0x90]).collect();
    let mut len = payload.len();
    while len >= 0x80 {
        deep.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    deep.push(len as u8);
    deep.extend(payload);
    seeds.push(("hostile-nested-value".into(), deep));
    // The selector of `List`, the postcard format, then `Cons(1, ..)` cells.
    let mut long = vec![3u8, 0];
    for _ in 0..2000 {
        long.extend([0, 1]);
    }
    long.push(1);
    seeds.push(("hostile-long-list".into(), long));
    seeds
}
