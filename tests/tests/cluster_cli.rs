//! Multi-process cluster tests: real `raykit` daemons on 127.0.0.1, each test with its own
//! ports and its own `RAYKIT_HOME`. Every wait is bounded, and every process a test starts is
//! killed when the test ends, passed or failed (the guards below do it on drop, so on panic too).

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use raykit::cluster::node::exe;
use raykit::cluster::proto::handshake::{Side, Transcript, NONCE_LEN, PROOF_LEN};
use raykit::cluster::proto::{Handshake, Message, Refusal, Role, PROTOCOL_VERSION};
use raykit::cluster::records::{self, ClusterRecord, DaemonRecord};

const CLI: &str = env!("CARGO_BIN_EXE_raykit-cli");
/// Two driver programs: two different executables for the caches.
const JOB_DRIVER: &str = env!("CARGO_BIN_EXE_job_driver");
const CLUSTER_DRIVER: &str = env!("CARGO_BIN_EXE_cluster_driver");
const TOKEN: &str = "test-token-0123456789";
/// The longest any single step may take.
const STEP: Duration = Duration::from_secs(10);
/// The longest a driver may take (a debug build of one is uploaded first).
const DRIVER_LIMIT: Duration = Duration::from_secs(120);

/// A port that was free a moment ago (the CLI cannot be told to bind port 0).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// One test's private `RAYKIT_HOME`, the daemons it started and the logs they wrote. Dropping
/// it kills every process it knows of, including detached daemons found in its records, and
/// shows the logs when the test failed.
struct Sandbox {
    home: PathBuf,
    children: Vec<(String, Child)>,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        static N: AtomicUsize = AtomicUsize::new(0);
        let home = std::env::temp_dir().join(format!(
            "raykit-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&home);
        fs::create_dir_all(&home).expect("create the test's RAYKIT_HOME");
        Sandbox {
            home,
            children: Vec::new(),
        }
    }

    fn cli(&self) -> Command {
        let mut cmd = Command::new(CLI);
        cmd.env("RAYKIT_HOME", &self.home)
            .env_remove("RAYKIT_ADDRESS")
            .env_remove("RAYKIT_TOKEN")
            .env("RAYKIT_LOG", "info")
            // Refusals are summarised every second, so tests can see the summaries.
            .env("RAYKIT_REFUSAL_SUMMARY_MS", "1000")
            .stdin(Stdio::null());
        cmd
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.home.join(format!("{name}.out"))
    }

    /// Starts `raykit start <args> --block` in the background; its output goes to `<name>.out`.
    fn spawn_daemon(&mut self, name: &str, args: &[&str]) {
        self.spawn_daemon_with(name, args, &[]);
    }

    /// [`Sandbox::spawn_daemon`] with the environment variables `env`.
    fn spawn_daemon_with(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) {
        let cmd = self.cli();
        self.spawn_daemon_cmd(name, cmd, args, env);
    }

    /// [`Sandbox::spawn_daemon`] with at most `nofile` open files (soft and hard limit).
    fn spawn_daemon_limited(&mut self, name: &str, nofile: u32, args: &[&str]) {
        let template = self.cli();
        let mut cmd = Command::new("sh");
        for (k, v) in template.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(CLI)
            .stdin(Stdio::null());
        self.spawn_daemon_cmd(name, cmd, args, &[]);
    }

    fn spawn_daemon_cmd(
        &mut self,
        name: &str,
        mut cmd: Command,
        args: &[&str],
        env: &[(&str, &str)],
    ) {
        let out = fs::File::create(self.log_path(name)).expect("create the daemon's log");
        let err = out.try_clone().expect("clone the log");
        let child = cmd
            .arg("start")
            .args(args)
            .arg("--block")
            .envs(env.iter().copied())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn a daemon");
        self.children.push((name.to_owned(), child));
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    fn child(&mut self, name: &str) -> &mut Child {
        &mut self
            .children
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect("no such daemon")
            .1
    }

    /// Runs a CLI command to completion (at most [`STEP`]); returns status, stdout, stderr.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let out_path = self.home.join(format!("cmd-{n}.out"));
        let err_path = self.home.join(format!("cmd-{n}.err"));
        let mut cmd = self.cli();
        cmd.args(args)
            .envs(env.iter().copied())
            .stdout(fs::File::create(&out_path).expect("create stdout file"))
            .stderr(fs::File::create(&err_path).expect("create stderr file"));
        let mut child = cmd.spawn().expect("spawn the CLI");
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the CLI") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`raykit {}` did not finish within {STEP:?}", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
        (status, read(&out_path), read(&err_path))
    }

    fn status(&self, port: u16, token: &str) -> (ExitStatus, String, String) {
        let address = format!("127.0.0.1:{port}");
        self.run(
            &["status", "--address", &address],
            &[("RAYKIT_TOKEN", token)],
        )
    }

    /// Polls `status` until `ok` accepts its output; panics with the last output after `within`.
    fn wait_for_status(&self, port: u16, within: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let (st, out, err) = self.status(port, TOKEN);
            if st.success() && ok(&out) {
                return out;
            }
            if Instant::now() > deadline {
                panic!("status never matched within {within:?}; last:\n{out}{err}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `driver` with `args` against the cluster at `address` to completion (at most
    /// [`DRIVER_LIMIT`]) and returns its output; panics when it fails.
    fn drive(&self, driver: &str, args: &[&str], address: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let out_path = self.home.join(format!("driver-{n}.out"));
        let mut child = Command::new(driver)
            .args(args)
            .env("RAYKIT_HOME", &self.home)
            .env("RAYKIT_ADDRESS", address)
            .env("RAYKIT_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).expect("create the driver's output"))
            .stderr(fs::File::create(out_path.with_extension("err")).expect("create a file"))
            .spawn()
            .expect("spawn a driver");
        let deadline = Instant::now() + DRIVER_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the driver") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the driver `{}` did not finish within {DRIVER_LIMIT:?}",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = fs::read_to_string(&out_path).unwrap_or_default();
        let err = fs::read_to_string(out_path.with_extension("err")).unwrap_or_default();
        assert!(
            status.success(),
            "driver `{}` failed ({status}):\n{out}{err}",
            args.join(" ")
        );
        out
    }

    /// The daemon records in `daemons/`.
    fn records(&self) -> Vec<DaemonRecord> {
        let mut out: Vec<DaemonRecord> = fs::read_dir(self.home.join("daemons"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| {
                let text = fs::read(e.path()).expect("read a record");
                serde_json::from_slice(&text).expect("parse a record")
            })
            .collect();
        out.sort_by_key(|r| r.pid);
        out
    }

    /// The per-daemon directories (`node-*`, `head-node-*`) in the home, sorted.
    fn daemon_dirs(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(&self.home)
            .expect("read the home")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("node-") || n.starts_with("head-node-"))
            .collect();
        out.sort();
        out
    }

    /// The pids recorded in `daemons/`.
    fn recorded_pids(&self) -> Vec<u32> {
        let Ok(entries) = fs::read_dir(self.home.join("daemons")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".json")?.parse().ok()
            })
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.recorded_pids() {
            records::kill(pid);
        }
        if std::thread::panicking() {
            for (name, _) in &self.children {
                eprintln!("---- output of {name}:\n{}", self.log(name));
            }
            if let Ok(logs) = fs::read_dir(self.home.join("logs")) {
                for log in logs.flatten() {
                    let text = fs::read_to_string(log.path()).unwrap_or_default();
                    eprintln!("---- {}:\n{text}", log.path().display());
                }
            }
        }
        let _ = fs::remove_dir_all(&self.home);
    }
}

/// Waits (bounded) until `f` holds.
fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        if Instant::now() > deadline {
            panic!("{what}: not within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a head with the test token on a free port and waits until it answers.
fn start_head(sb: &mut Sandbox, extra: &[&str]) -> u16 {
    start_head_with(sb, extra, &[])
}

/// [`start_head`] with the environment variables `env`.
fn start_head_with(sb: &mut Sandbox, extra: &[&str], env: &[(&str, &str)]) -> u16 {
    let port = free_port();
    let port_s = port.to_string();
    let mut args = vec!["--head", "--port", &port_s, "--token", TOKEN];
    args.extend_from_slice(extra);
    sb.spawn_daemon_with("head", &args, env);
    sb.wait_for_status(port, STEP, |out| out.contains("nodes: 1 alive"));
    port
}

fn node_line<'a>(status: &'a str, needle: &str) -> Option<&'a str> {
    status
        .lines()
        .find(|l| l.starts_with("  node-") && l.contains(needle))
}

#[test]
fn nodes_join_with_their_resources_and_a_killed_node_is_declared_dead() {
    let mut sb = Sandbox::new("join");
    let port = start_head(
        &mut sb,
        &["--num-cpus", "2", "--resources", r#"{"custom": 2}"#],
    );
    let head_address = format!("127.0.0.1:{port}");
    sb.spawn_daemon(
        "node",
        &[
            "--address",
            &head_address,
            "--num-cpus",
            "3",
            "--num-gpus",
            "1",
            "--token",
            TOKEN,
        ],
    );
    let status = sb.wait_for_status(port, STEP, |out| out.contains("nodes: 2 alive, 0 dead"));
    let head = node_line(&status, "head").expect("a head line");
    assert!(head.contains("alive"), "{status}");
    assert!(head.contains(&head_address), "{status}");
    assert!(
        head.contains("CPU 0/2") && head.contains("GPU 0/0") && head.contains("custom 0/2"),
        "{status}"
    );
    let node = node_line(&status, "CPU 0/3").expect("the second node's line");
    assert!(
        node.contains("alive") && node.contains("GPU 0/1"),
        "{status}"
    );
    assert!(status.contains("actors: 0 pending, 0 alive"), "{status}");
    assert!(status.contains("tasks: 0 waiting, 0 running"), "{status}");

    // Kill the node's process: the head must notice within a few seconds.
    sb.child("node").kill().expect("kill the node");
    let _ = sb.child("node").wait();
    let status = sb.wait_for_status(port, Duration::from_secs(5), |out| {
        out.contains("nodes: 1 alive, 1 dead")
    });
    let dead = node_line(&status, "dead (").expect("a dead node line");
    assert!(dead.contains("CPU 3"), "{status}");
    assert!(sb.log("head").contains("node dead"), "{}", sb.log("head"));
}

#[test]
fn a_wrong_token_is_refused_on_both_ends_and_the_head_keeps_serving() {
    let mut sb = Sandbox::new("token");
    let port = start_head(&mut sb, &["--num-cpus", "1"]);

    let (st, _, err) = sb.status(port, "not-the-token");
    assert!(!st.success());
    assert!(
        err.contains("refused the connection: wrong cluster token"),
        "{err}"
    );

    // A node with the wrong token fails to start, with the same reason.
    let address = format!("127.0.0.1:{port}");
    let (st, _, err) = sb.run(
        &["start", "--address", &address, "--token", "nope", "--block"],
        &[],
    );
    assert!(!st.success());
    assert!(err.contains("wrong cluster token"), "{err}");

    wait_until(STEP, "the head logs the refusals", || {
        sb.log("head").matches("wrong cluster token").count() >= 2
    });
    let (st, out, err) = sb.status(port, TOKEN);
    assert!(st.success(), "{err}");
    assert!(out.contains("nodes: 1 alive, 0 dead"), "{out}");
}

/// Reads one length-delimited frame.
fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("read the answer's length");
    let len = u32::from_be_bytes(len) as usize;
    assert!(len < 64 * 1024, "answer of {len} bytes");
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).expect("read the answer");
    payload
}

fn connect_raw(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the head");
    s.set_read_timeout(Some(STEP)).expect("read timeout");
    s.set_write_timeout(Some(STEP)).expect("write timeout");
    s
}

/// Sends raw bytes as the first frame and returns the daemon's answer, decoded.
fn raw_exchange(port: u16, bytes: &[u8]) -> Handshake {
    let mut s = connect_raw(port);
    s.write_all(bytes).expect("send the frame");
    let payload = read_frame(&mut s);
    // The daemon closes the connection after a refusal.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    Handshake::decode(&payload).expect("decode the answer")
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Runs the connecting side of the handshake by hand with `token`; returns the stream and the
/// daemon's last answer.
fn raw_handshake(port: u16, token: &str) -> (TcpStream, Handshake) {
    let mut s = connect_raw(port);
    let client = [7u8; NONCE_LEN];
    let hello = Handshake::Hello {
        version: PROTOCOL_VERSION,
        role: Role::Client,
        nonce: client,
    };
    s.write_all(&frame(&hello.encode().unwrap())).unwrap();
    let server = match Handshake::decode(&read_frame(&mut s)).unwrap() {
        Handshake::Challenge { nonce } => nonce,
        other => return (s, other),
    };
    let transcript = Transcript {
        version: PROTOCOL_VERSION,
        role: Role::Client,
        client,
        server,
    };
    let proof = Handshake::Proof {
        proof: transcript.proof(token, Side::Client),
    };
    s.write_all(&frame(&proof.encode().unwrap())).unwrap();
    let answer = Handshake::decode(&read_frame(&mut s)).unwrap();
    if let Handshake::Welcome { proof, .. } = &answer {
        assert!(
            transcript.verify(token, Side::Server, proof),
            "the daemon proves the token too"
        );
    }
    (s, answer)
}

fn expect_refusal(answer: Handshake, expected: Refusal, words: &str) {
    match answer {
        Handshake::Refused { refusal, reason } => {
            assert_eq!(refusal, expected, "{reason}");
            assert!(reason.contains(words), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Item 1 of the hardening issue: a `Failed` message whose error nests 21,000 times in the
/// recursive encoding errors used to have (63 KB), which overflowed the stack of whatever
/// decoded it.
fn nested_error_frame() -> Vec<u8> {
    let tag = Message::Failed {
        error: raykit::Error::new(raykit::ErrorKind::System, "x"),
    }
    .encode()
    .unwrap()[0];
    let mut payload = vec![tag];
    for _ in 0..21_000 {
        payload.extend_from_slice(&[0, 0, 1]);
    }
    payload.extend_from_slice(&[0, 0, 0]);
    frame(&payload)
}

#[test]
fn malformed_oversized_and_wrong_version_handshakes_are_refused_and_the_head_keeps_serving() {
    let mut sb = Sandbox::new("frames");
    let port = start_head(&mut sb, &["--num-cpus", "1"]);

    // Garbage: a variant index no handshake frame has.
    let answer = raw_exchange(port, &frame(&[0x7f, 1, 2, 3]));
    expect_refusal(answer, Refusal::Malformed, "malformed handshake");

    // A header announcing 100 MiB before any authentication.
    let mut huge = (100u32 << 20).to_be_bytes().to_vec();
    huge.extend_from_slice(&[0u8; 16]);
    expect_refusal(raw_exchange(port, &huge), Refusal::TooLarge, "limit");

    // The deeply nested error before authentication: too large for a handshake frame, and a
    // handshake frame holds nothing recursive.
    expect_refusal(
        raw_exchange(port, &nested_error_frame()),
        Refusal::TooLarge,
        "limit",
    );

    // A future protocol version is told so before anything else is asked.
    let hello = Handshake::Hello {
        version: PROTOCOL_VERSION + 1,
        role: Role::Client,
        nonce: [0; NONCE_LEN],
    };
    let answer = raw_exchange(port, &frame(&hello.encode().expect("encode")));
    expect_refusal(answer, Refusal::VersionMismatch, "version");

    // A proof made with a wrong token.
    let (_, answer) = raw_handshake(port, "wrong");
    expect_refusal(answer, Refusal::Unauthorized, "wrong cluster token");

    // Anything but a Hello first.
    let proof = Handshake::Proof {
        proof: [0; PROOF_LEN],
    };
    let answer = raw_exchange(port, &frame(&proof.encode().expect("encode")));
    expect_refusal(answer, Refusal::UnexpectedMessage, "expected a Hello");

    // After a real handshake, the nested error is refused as malformed, not followed.
    let (mut s, answer) = raw_handshake(port, TOKEN);
    assert!(matches!(answer, Handshake::Welcome { .. }), "{answer:?}");
    s.write_all(&nested_error_frame()).expect("send the frame");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);

    // A connection that says nothing, left open, does not stop others from being served.
    let _silent = TcpStream::connect(("127.0.0.1", port)).expect("connect");

    let (st, out, err) = sb.status(port, TOKEN);
    assert!(st.success(), "{err}");
    assert!(out.contains("nodes: 1 alive, 0 dead"), "{out}");
    wait_until(STEP, "the head logs every refusal", || {
        let log = sb.log("head");
        [
            "malformed handshake",
            "byte limit",
            "version mismatch",
            "expected a Hello",
            "wrong cluster token",
        ]
        .iter()
        .all(|w| log.contains(w))
    });
    assert!(
        sb.child("head").try_wait().unwrap().is_none(),
        "the head survived"
    );
}

#[test]
fn wrong_tokens_are_rate_limited_per_address_and_logged_as_a_summary() {
    let mut sb = Sandbox::new("flood");
    let port = start_head(&mut sb, &["--num-cpus", "1"]);
    let mut limited = 0;
    for _ in 0..200 {
        match raw_handshake(port, "guess").1 {
            Handshake::Refused {
                refusal: Refusal::Unauthorized,
                ..
            } => {}
            Handshake::Refused {
                refusal: Refusal::RateLimited,
                reason,
            } => {
                assert!(reason.contains("too many refused handshakes"), "{reason}");
                limited += 1;
            }
            other => panic!("a guess got {other:?}"),
        }
    }
    assert!(
        limited >= 100,
        "only {limited} of 200 guesses were rate limited"
    );
    // The right token gets in again once the address's budget refills (2 a second).
    wait_until(STEP, "the right token is served again", || {
        sb.status(port, TOKEN).0.success()
    });
    wait_until(STEP, "a summary of the refusals is logged", || {
        sb.log("head").contains("handshakes from 1 addresses")
    });
    let log = sb.log("head");
    let lines = log.matches("wrong cluster token").count();
    assert!(lines < 40, "{lines} lines for 200 guesses:\n{log}");
}

#[test]
fn silent_connections_cannot_hold_the_daemon_and_connections_are_capped() {
    let mut sb = Sandbox::new("silent");
    let port = free_port();
    let port_s = port.to_string();
    sb.spawn_daemon_limited(
        "head",
        1024,
        &[
            "--head",
            "--port",
            &port_s,
            "--token",
            TOKEN,
            "--num-cpus",
            "1",
        ],
    );
    sb.wait_for_status(port, STEP, |out| out.contains("nodes: 1 alive"));
    // 1,000 connections that never say hello: more than the daemon has file descriptors for
    // once its own are counted, and each would hold a handshake slot for 5 s.
    let silent: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(silent.len() >= 900, "{} connections made", silent.len());
    let start = Instant::now();
    let (st, out, err) = sb.status(port, TOKEN);
    let took = start.elapsed();
    assert!(st.success() && out.contains("nodes: 1 alive"), "{err}");
    // A handshake lasts up to 5 s; a slot held that long would show as a wait of seconds.
    assert!(
        took < Duration::from_secs(3),
        "status took {took:?} behind silent connections"
    );
    wait_until(STEP, "the evictions are summarised", || {
        sb.log("head").contains("silent handshakes evicted")
    });
    drop(silent);
    assert!(
        sb.child("head").try_wait().unwrap().is_none(),
        "the head survived"
    );
}

/// Relays one connection from `listener` to `port`, recording every byte both ways.
fn record_one(listener: TcpListener, port: u16) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let (client, _) = listener.accept().expect("accept");
        let server = TcpStream::connect(("127.0.0.1", port)).expect("connect to the head");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let pump = |mut from: TcpStream,
                    mut to: TcpStream,
                    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    seen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = to.shutdown(std::net::Shutdown::Write);
            })
        };
        let a = pump(
            client.try_clone().unwrap(),
            server.try_clone().unwrap(),
            seen.clone(),
        );
        let b = pump(server, client, seen.clone());
        let _ = a.join();
        let _ = b.join();
        let out = seen.lock().unwrap().clone();
        out
    })
}

#[test]
fn the_token_never_crosses_the_wire() {
    let mut sb = Sandbox::new("capture");
    let port = start_head(&mut sb, &["--num-cpus", "1"]);
    let proxy = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let proxy_port = proxy.local_addr().unwrap().port();
    let recorded = record_one(proxy, port);
    let (st, out, err) = sb.status(proxy_port, TOKEN);
    assert!(st.success(), "{err}");
    assert!(out.contains("nodes: 1 alive"), "{out}");
    let bytes = recorded.join().expect("the proxy");
    assert!(bytes.len() > 100, "the exchange went through the proxy");
    let token = TOKEN.as_bytes();
    assert!(
        !bytes.windows(8).any(|w| token.windows(8).any(|t| t == w)),
        "no 8 bytes of the token are on the wire"
    );

    // The token can come from a file, so it need not be on a command line or in the
    // environment of every process.
    let file = sb.home.join("token");
    fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let address = format!("127.0.0.1:{port}");
    let file_s = file.to_string_lossy().into_owned();
    let (st, out, err) = sb.run(
        &["status", "--address", &address],
        &[("RAYKIT_TOKEN_FILE", &file_s)],
    );
    assert!(st.success() && out.contains("nodes: 1 alive"), "{err}");
    fs::write(&file, "not-the-token").unwrap();
    let (st, _, err) = sb.run(
        &["status", "--address", &address, "--token-file", &file_s],
        &[],
    );
    assert!(
        !st.success() && err.contains("wrong cluster token"),
        "{err}"
    );
    assert!(
        !err.contains("--token "),
        "no advice to put a token on a command line: {err}"
    );
}

#[test]
fn detached_daemons_are_found_by_status_and_stop_leaves_no_process() {
    let sb = Sandbox::new("detach");
    let port = free_port();
    let port_s = port.to_string();
    // No --block, no token: the head makes one and records it.
    let (st, out, err) = sb.run(
        &["start", "--head", "--port", &port_s, "--num-cpus", "1"],
        &[],
    );
    assert!(st.success(), "{out}{err}");
    assert!(out.contains("raykit head started"), "{out}");
    // The node finds the token in the records.
    let address = format!("127.0.0.1:{port}");
    let (st, out, err) = sb.run(&["start", "--address", &address, "--num-cpus", "1"], &[]);
    assert!(st.success(), "{out}{err}");
    let pids = sb.recorded_pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.iter().all(|&p| records::process_alive(p)));

    // status with no address: the recorded cluster.
    let deadline = Instant::now() + STEP;
    loop {
        let (st, out, err) = sb.run(&["status"], &[]);
        if st.success() && out.contains("nodes: 2 alive") {
            break;
        }
        assert!(Instant::now() < deadline, "status: {out}{err}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (st, out, err) = sb.run(&["stop"], &[]);
    assert!(st.success(), "{out}{err}");
    assert_eq!(out.matches("stopped the").count(), 2, "{out}");
    wait_until(STEP, "every daemon exits", || {
        pids.iter().all(|&p| !records::process_alive(p))
    });
    assert!(sb.recorded_pids().is_empty());
    assert!(!sb.home.join("cluster.json").exists());

    // With nothing left, status says so and stop has nothing to do.
    let (st, _, err) = sb.run(&["status"], &[]);
    assert!(!st.success());
    assert!(err.contains("no cluster recorded"), "{err}");
    let (st, out, _) = sb.run(&["stop"], &[]);
    assert!(st.success() && out.contains("no raykit daemons"), "{out}");
}

/// Sends a signal by name with the system's `kill` (SIGSTOP and SIGCONT have no std API).
fn send_signal(pid: u32, signal: &str) {
    let st = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -{signal} {pid}");
}

#[test]
fn a_frozen_node_is_declared_dead_by_missed_heartbeats_and_then_rejoins() {
    let mut sb = Sandbox::new("frozen");
    let port = start_head(&mut sb, &["--num-cpus", "1"]);
    let address = format!("127.0.0.1:{port}");
    sb.spawn_daemon(
        "node",
        &["--address", &address, "--num-cpus", "4", "--token", TOKEN],
    );
    sb.wait_for_status(port, STEP, |out| out.contains("nodes: 2 alive"));

    // Stopped, the node keeps its connection open but sends no heartbeat.
    let pid = sb.child("node").id();
    send_signal(pid, "STOP");
    let status = sb.wait_for_status(port, Duration::from_secs(8), |out| {
        out.contains("nodes: 1 alive, 1 dead")
    });
    let dead = node_line(&status, "dead (").expect("a dead node line");
    assert!(dead.contains("no heartbeat"), "{status}");

    // Resumed, it learns it is no longer a member, resets and joins again as a new
    // incarnation: the same node, alive, with all its CPUs.
    send_signal(pid, "CONT");
    let status = sb.wait_for_status(port, STEP, |out| out.contains("nodes: 2 alive"));
    assert!(
        sb.child("node")
            .try_wait()
            .expect("poll the node")
            .is_none(),
        "the node exited:\n{}",
        sb.log("node")
    );
    let log = sb.log("node");
    assert!(log.contains("resetting and joining again"), "{log}");
    assert!(log.contains("incarnation=2"), "{log}");
    let node = node_line(&status, "CPU 0/4").expect("the node with all its CPUs free");
    assert!(node.contains("alive"), "{status}");
}

#[test]
fn a_dead_node_leaves_the_table_after_the_grace_period_into_the_recently_dead_list() {
    let mut sb = Sandbox::new("grace");
    let port = start_head_with(
        &mut sb,
        &["--num-cpus", "1"],
        &[("RAYKIT_DEAD_NODE_GRACE_MS", "1500")],
    );
    let address = format!("127.0.0.1:{port}");
    sb.spawn_daemon(
        "node",
        &["--address", &address, "--num-cpus", "3", "--token", TOKEN],
    );
    let status = sb.wait_for_status(port, STEP, |out| out.contains("nodes: 2 alive"));
    let node_id = node_line(&status, "CPU 0/3")
        .and_then(|l| l.split_whitespace().next())
        .expect("the node's line")
        .to_owned();
    sb.child("node").kill().expect("kill the node");
    let _ = sb.child("node").wait();
    let dead = sb.wait_for_status(port, STEP, |out| out.contains("nodes: 1 alive, 1 dead"));
    assert!(!dead.contains("recently dead"), "{dead}");
    // After the grace period it is gone from the table and listed as recently dead.
    let status = sb.wait_for_status(port, STEP, |out| {
        out.contains("nodes: 1 alive, 0 dead") && out.contains("recently dead: 1")
    });
    let listed = status
        .lines()
        .find(|l| l.starts_with("    node-"))
        .expect("a recently dead line");
    assert!(listed.contains(&node_id), "{status}");
    assert!(listed.contains("connection lost"), "{status}");
    assert!(node_line(&status, &node_id).is_none(), "{status}");
}

/// The executables in the cache directory `dir` and their total size.
fn cached(dir: &Path) -> (Vec<String>, u64) {
    let mut names = Vec::new();
    let mut bytes = 0;
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        names.push(e.file_name().to_string_lossy().into_owned());
        bytes += e.metadata().map_or(0, |m| m.len());
    }
    names.sort();
    (names, bytes)
}

fn kill_9(sb: &mut Sandbox, name: &str) {
    sb.child(name).kill().expect("kill -9 a daemon");
    let _ = sb.child(name).wait();
}

/// Item 8 of the hardening issue: daemons killed with `kill -9` left their records and their
/// executable caches behind for good. Only a cluster has this to test: it kills daemon
/// processes, and an embedded runtime has no daemons, records or caches.
#[test]
fn a_daemon_started_after_kill_9_removes_what_the_killed_daemons_left() {
    let mut sb = Sandbox::new("sweep");
    // No CPUs on the head: the driver's tasks run on the node, which caches its executable.
    let port = start_head(&mut sb, &["--num-cpus", "0"]);
    let address = format!("127.0.0.1:{port}");
    sb.spawn_daemon(
        "node",
        &["--address", &address, "--num-cpus", "1", "--token", TOKEN],
    );
    sb.wait_for_status(port, STEP, |out| out.contains("nodes: 2 alive"));
    let out = sb.drive(JOB_DRIVER, &["small", "5"], &address);
    assert!(out.contains("sum 15"), "{out}");

    let hash = exe::hash_file(Path::new(JOB_DRIVER)).expect("hash the driver");
    let old = sb.records();
    assert_eq!(old.len(), 2, "{old:?}");
    let old_head = old.iter().find(|r| r.head).expect("the head's record");
    let old_node = old.iter().find(|r| !r.head).expect("the node's record");
    let uploaded = sb
        .home
        .join(format!("head-{}", old_head.node_id))
        .join("exe")
        .join(&hash);
    let cached_on_node = sb.home.join(&old_node.node_id).join("exe").join(&hash);
    assert!(uploaded.is_file() && cached_on_node.is_file());

    kill_9(&mut sb, "node");
    kill_9(&mut sb, "head");
    // Nothing cleaned up after them.
    assert_eq!(sb.records().len(), 2);
    assert!(uploaded.is_file() && cached_on_node.is_file());
    assert!(sb.home.join("cluster.json").is_file());

    // A new head in the same home removes all of it before it records itself.
    let port2 = free_port();
    let port2_s = port2.to_string();
    sb.spawn_daemon(
        "head2",
        &[
            "--head",
            "--port",
            &port2_s,
            "--token",
            TOKEN,
            "--num-cpus",
            "1",
        ],
    );
    // No CLI runs meanwhile (`raykit status` sweeps too): the head's record says it is up.
    let pid2 = sb.child("head2").id();
    wait_until(STEP, "the new head records itself", || {
        sb.records().iter().any(|r| r.pid == pid2)
    });
    let new = sb.records();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0].pid, pid2);
    let mut want = vec![new[0].node_id.clone(), format!("head-{}", new[0].node_id)];
    want.sort();
    assert_eq!(sb.daemon_dirs(), want, "only the new head's directories");
    for dir in &want {
        assert!(
            sb.home.join(dir).join(records::OWNER_FILE).is_file(),
            "{dir}"
        );
    }
    let cluster: ClusterRecord =
        serde_json::from_slice(&fs::read(sb.home.join("cluster.json")).expect("cluster.json"))
            .expect("parse cluster.json");
    assert_eq!(cluster.address, format!("127.0.0.1:{port2}"));
    let log = sb.log("head2");
    let line = log
        .lines()
        .find(|l| l.contains("cleaned up after daemons that are gone"))
        .unwrap_or_else(|| panic!("no line on the cleanup:\n{log}"));
    assert!(
        line.contains("removed 2 stale daemon records, 3 directories"),
        "{line}"
    );
    sb.wait_for_status(port2, STEP, |out| out.contains("nodes: 1 alive"));

    // With every daemon gone, status and stop clean up too and show nothing stale.
    kill_9(&mut sb, "head2");
    let (st, _, err) = sb.run(&["status"], &[]);
    assert!(!st.success());
    assert!(err.contains("removed 1 stale daemon record,"), "{err}");
    assert!(err.contains("no cluster recorded"), "{err}");
    assert!(sb.records().is_empty());
    assert!(sb.daemon_dirs().is_empty(), "{:?}", sb.daemon_dirs());
    assert!(!sb.home.join("cluster.json").exists());
    let (st, out, _) = sb.run(&["stop"], &[]);
    assert!(st.success() && out.contains("no raykit daemons"), "{out}");
}

/// The executable caches stay under `RAYKIT_EXE_CACHE_BYTES` once no job uses what they hold.
#[test]
fn executable_caches_hold_at_most_their_cap_once_the_jobs_that_use_them_end() {
    let mut sb = Sandbox::new("exe-cap");
    let size = |p: &str| fs::metadata(p).expect("a driver's size").len();
    // Room for either driver, not for both.
    let cap = size(JOB_DRIVER).max(size(CLUSTER_DRIVER));
    let cap_s = cap.to_string();
    let port = start_head_with(
        &mut sb,
        &["--num-cpus", "1"],
        &[("RAYKIT_EXE_CACHE_BYTES", &cap_s)],
    );
    let address = format!("127.0.0.1:{port}");
    let head = sb.records().pop().expect("the head's record");
    // The head's store of uploads, and its node's cache of what it runs.
    let dirs = [
        sb.home.join(format!("head-{}", head.node_id)).join("exe"),
        sb.home.join(&head.node_id).join("exe"),
    ];
    let first = exe::hash_file(Path::new(JOB_DRIVER)).expect("hash a driver");
    let second = exe::hash_file(Path::new(CLUSTER_DRIVER)).expect("hash a driver");

    let out = sb.drive(JOB_DRIVER, &["small", "3"], &address);
    assert!(out.contains("sum 6"), "{out}");
    for dir in &dirs {
        assert_eq!(cached(dir).0, vec![first.clone()], "{}", dir.display());
    }
    let out = sb.drive(CLUSTER_DRIVER, &["spread", "1"], &address);
    assert!(out.contains("nodes 1"), "{out}");
    // The first job's executable made room for the second's.
    wait_until(STEP, "the caches are back under their cap", || {
        dirs.iter()
            .all(|d| cached(d) == (vec![second.clone()], size(CLUSTER_DRIVER)))
    });
    for dir in &dirs {
        assert!(cached(dir).1 <= cap);
    }
    assert!(
        sb.log("head").contains("cached executable evicted"),
        "{}",
        sb.log("head")
    );
}
