//! A cluster spread over several hosts. These checks only make sense on a cluster: they are
//! about which address each daemon hands out to the others (object locations, actor
//! locations, the head's own node), which an embedded runtime never has.
//!
//! The loopback test runs everywhere: a head bound to every interface with
//! `--node-ip-address 127.0.0.2` must be reached at that address. The network-namespace tests
//! (`raykit_tests::netns`, root only; they skip with a printed reason elsewhere unless
//! `RAYKIT_REQUIRE_NETNS=1`) run a head and two nodes on three private hosts, all on the SAME
//! port, so a daemon that handed out `127.0.0.1` would send its peers to themselves.
//!
//! Every wait is bounded and every process a test starts is killed when it ends, passed or
//! failed (on drop, so on panic too).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use raykit::cluster::records;
use raykit_tests::cluster::{free_port, line, TOKEN};
use raykit_tests::netns::Net;

const CLI: &str = env!("CARGO_BIN_EXE_raykit-cli");
const DRIVER: &str = env!("CARGO_BIN_EXE_hosts_driver");
/// The longest a daemon may take to come up or a status to match.
const STEP: Duration = Duration::from_secs(20);
/// The longest a driver scenario may take.
const DRIVER_LIMIT: Duration = Duration::from_secs(180);

/// A fresh directory for one daemon's or driver's `RAYKIT_HOME` and output.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "raykit-hosts-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Kills the processes recorded in the given homes and removes the homes, on drop.
struct Homes(Vec<PathBuf>);

impl Drop for Homes {
    fn drop(&mut self) {
        for home in &self.0 {
            if let Ok(entries) = fs::read_dir(home.join("daemons")) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Some(pid) = name.strip_suffix(".json").and_then(|p| p.parse().ok()) {
                        records::kill(pid);
                    }
                }
            }
            if std::thread::panicking() {
                for f in ["out", "err"] {
                    let text = fs::read_to_string(home.join(f)).unwrap_or_default();
                    eprintln!("---- {} {f}:\n{text}", home.display());
                }
            }
            let _ = fs::remove_dir_all(home);
        }
    }
}

/// `cmd` with `home` as its `RAYKIT_HOME` and its output in `home/out`, `home/err`.
fn in_home(mut cmd: Command, home: &std::path::Path) -> Command {
    cmd.env("RAYKIT_HOME", home)
        .env("RAYKIT_LOG", "info")
        .env("RAYKIT_TOKEN", TOKEN)
        .env_remove("RAYKIT_ADDRESS")
        .env_remove("RAYKIT_NODE_IP_ADDRESS")
        .stdout(fs::File::create(home.join("out")).expect("create out"))
        .stderr(fs::File::create(home.join("err")).expect("create err"));
    cmd
}

/// What `raykit status --address ADDRESS` prints, run by `cmd`.
fn status_with(mut cmd: Command, address: &str) -> String {
    let out = cmd
        .args(["status", "--address", address])
        .env("RAYKIT_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .output()
        .expect("run raykit status");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `status` until `ok` holds; panics after `within`.
fn wait_for(
    within: Duration,
    mut status: impl FnMut() -> String,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let s = status();
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "status never matched within {within:?}; last:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `  node-...` lines of a status.
fn node_lines(status: &str) -> Vec<&str> {
    status
        .lines()
        .filter(|l| l.starts_with("  node-"))
        .collect()
}

#[test]
fn a_head_on_every_interface_is_reached_at_its_node_ip_address() {
    let port = free_port();
    let head_home = scratch("lo-head");
    let node_home = scratch("lo-node");
    let driver_home = scratch("lo-driver");
    let _homes = Homes(vec![
        head_home.clone(),
        node_home.clone(),
        driver_home.clone(),
    ]);
    let mut procs = Vec::new();
    let mut head = in_home(Command::new(CLI), &head_home);
    head.args([
        "start",
        "--head",
        "--bind",
        "0.0.0.0",
        "--port",
        &port.to_string(),
    ])
    .args([
        "--num-cpus",
        "1",
        "--resources",
        r#"{"alpha": 10}"#,
        "--block",
    ])
    .env("RAYKIT_NODE_IP_ADDRESS", "127.0.0.2");
    procs.push(Killed(head.spawn().expect("start the head")));
    let address = format!("127.0.0.2:{port}");
    let status = || status_with(Command::new(CLI), &address);
    wait_for(STEP, status, |s| s.contains("nodes: 1 alive"));
    let mut node = in_home(Command::new(CLI), &node_home);
    node.args(["start", "--address", &address, "--bind", "127.0.0.3"])
        .args([
            "--num-cpus",
            "1",
            "--resources",
            r#"{"beta": 10, "gamma": 10}"#,
            "--block",
        ]);
    procs.push(Killed(node.spawn().expect("start the node")));
    let st = wait_for(STEP, status, |s| s.contains("nodes: 2 alive"));
    let lines = node_lines(&st);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" head ") && l.contains(&address)),
        "the head's node is listed at its node IP address:\n{st}"
    );
    assert!(
        lines
            .iter()
            .any(|l| !l.contains(" head ") && l.contains("127.0.0.3:")),
        "the node is listed at its bound address:\n{st}"
    );
    assert!(
        !st.contains("127.0.0.1:"),
        "no daemon hands out 127.0.0.1:\n{st}"
    );

    let mut driver = in_home(Command::new(DRIVER), &driver_home);
    driver.arg("across").env("RAYKIT_ADDRESS", &address);
    let out = run_driver(driver, &driver_home);
    check_across(&out);

    let mut bad = Command::new(CLI);
    let bad = bad
        .args([
            "start",
            "--head",
            "--bind",
            "0.0.0.0",
            "--node-ip-address",
            "head.example",
        ])
        .env("RAYKIT_HOME", &head_home)
        .env("RAYKIT_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .output()
        .expect("run raykit start");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "a host name is refused");
    assert!(
        err.contains("--node-ip-address must be an IP address"),
        "{err}"
    );
}

/// A child process killed on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a driver to completion (at most [`DRIVER_LIMIT`]); returns its stdout, panics when it
/// fails.
fn run_driver(mut cmd: Command, home: &std::path::Path) -> String {
    let mut child = Killed(cmd.spawn().expect("start the driver"));
    let deadline = Instant::now() + DRIVER_LIMIT;
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("wait for the driver") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the driver did not finish within {DRIVER_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = fs::read_to_string(home.join("out")).unwrap_or_default();
    let err = fs::read_to_string(home.join("err")).unwrap_or_default();
    assert!(status.success(), "driver failed ({status}):\n{out}\n{err}");
    out
}

/// The answers of the `across` scenario: every value read on another host is the right one.
fn check_across(out: &str) {
    let big = 1u64 << 20;
    let beta = line(out, "beta node ").trim().to_owned();
    let put = line(out, "put read on beta ");
    assert_eq!(put, format!("{big} {} {beta}", 3 * big), "{out}");
    let alpha = line(out, "alpha output read on gamma ");
    assert!(alpha.starts_with(&format!("{big} {} ", 5 * big)), "{out}");
    assert_eq!(
        line(out, "alpha output read by driver "),
        (5 * big).to_string()
    );
    assert_eq!(line(out, "refs summed on beta "), (15 * big).to_string());
    assert_eq!(line(out, "actor from driver "), "11");
    assert_eq!(line(out, "actor from beta "), "111");
}

/// A head on host 0 bound to every interface (so it picks its advertised address itself), and
/// nodes on hosts 1 (`beta`) and 2 (`gamma`) bound to every interface too, ALL on one port;
/// drivers run on host 3, which has no node. Dropping it kills everything (the [`Net`] does).
struct Hosts {
    net: Net,
    port: u16,
    homes: Homes,
}

impl Hosts {
    fn start() -> Option<Hosts> {
        let net = Net::new(4)?;
        let mut h = Hosts {
            net,
            port: 7379,
            homes: Homes(Vec::new()),
        };
        let port = h.port.to_string();
        h.daemon(
            0,
            &["--head", "--port", &port, "--resources", r#"{"alpha": 10}"#],
        );
        h.wait_for_status(|s| s.contains("nodes: 1 alive"));
        let head = h.head();
        h.daemon(
            1,
            &[
                "--address",
                &head,
                "--port",
                &port,
                "--resources",
                r#"{"beta": 10}"#,
            ],
        );
        h.daemon(
            2,
            &[
                "--address",
                &head,
                "--port",
                &port,
                "--resources",
                r#"{"gamma": 10}"#,
            ],
        );
        h.wait_for_status(|s| s.contains("nodes: 3 alive"));
        Some(h)
    }

    fn head(&self) -> String {
        format!("{}:{}", self.net.ip(0), self.port)
    }

    /// `raykit start ARGS --bind 0.0.0.0 --num-cpus 2 --block` on host `i`, its own home.
    fn daemon(&mut self, i: usize, args: &[&str]) {
        let home = scratch(&format!("host{i}"));
        self.homes.0.push(home.clone());
        let mut cmd = in_home(self.net.command(i, CLI), &home);
        cmd.arg("start")
            .args(args)
            .args(["--bind", "0.0.0.0", "--num-cpus", "2", "--block"]);
        self.net.spawn(cmd);
    }

    /// `raykit status` asked from the driver's host.
    fn status(&self) -> String {
        status_with(self.net.command(3, CLI), &self.head())
    }

    fn wait_for_status(&self, ok: impl Fn(&str) -> bool) -> String {
        wait_for(STEP, || self.status(), ok)
    }

    /// A driver `args` on host 3, not yet waited for: its home.
    fn spawn_driver(&mut self, args: &[&str]) -> (u32, PathBuf) {
        let home = scratch("driver");
        self.homes.0.push(home.clone());
        let mut cmd = in_home(self.net.command(3, DRIVER), &home);
        cmd.args(args)
            .env("RAYKIT_ADDRESS", self.head())
            // The "hosts" share one kernel: keep puts off the head's shared memory, on the
            // network as between real machines.
            .env("RAYKIT_SHARED_MEMORY", "0");
        (self.net.spawn(cmd), home)
    }

    /// Runs a driver on host 3 to completion; its output.
    fn drive(&mut self, args: &[&str]) -> String {
        let home = scratch("driver");
        self.homes.0.push(home.clone());
        let mut cmd = in_home(self.net.command(3, DRIVER), &home);
        cmd.args(args)
            .env("RAYKIT_ADDRESS", self.head())
            // The "hosts" share one kernel: keep puts off the head's shared memory, on the
            // network as between real machines.
            .env("RAYKIT_SHARED_MEMORY", "0");
        run_driver(cmd, &home)
    }
}

#[test]
fn puts_outputs_refs_and_actor_calls_cross_hosts_that_share_one_port() {
    let Some(mut hosts) = Hosts::start() else {
        return;
    };
    let st = hosts.status();
    let lines = node_lines(&st);
    for i in 0..3 {
        let at = format!("{}:{}", hosts.net.ip(i), hosts.port);
        assert!(
            lines.iter().any(|l| l.contains(&at)),
            "host {i} is listed at {at}:\n{st}"
        );
    }
    assert!(
        !st.contains("127.0.0.1"),
        "no daemon hands out 127.0.0.1:\n{st}"
    );
    let out = hosts.drive(&["across"]);
    check_across(&out);
    // Each check ran where it was pinned: the driver, beta and the actor's host differ.
    let beta = line(&out, "beta node ").trim();
    let actor = line(&out, "actor on ").trim();
    assert_ne!(beta, actor, "the actor lives on gamma, not beta:\n{out}");
    assert!(
        line(&out, "alpha output read on gamma ").ends_with(actor),
        "{out}"
    );
}

#[test]
fn a_cut_host_gives_recovery_or_a_bounded_error_and_the_rest_stays_healthy() {
    let Some(mut hosts) = Hosts::start() else {
        return;
    };
    let marker = scratch("marker").join("cut");
    let (pid, home) = hosts.spawn_driver(&["cut", marker.to_str().expect("utf-8 path")]);
    let out = home.join("out");
    let deadline = Instant::now() + DRIVER_LIMIT;
    while !fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("ready\n")
    {
        assert!(Instant::now() < deadline, "the driver never got ready");
        assert!(
            hosts.net.child(pid).try_wait().expect("wait").is_none(),
            "the driver ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    hosts.net.cut(2);
    fs::write(&marker, b"cut").expect("write the marker");
    let status = loop {
        if let Some(s) = hosts
            .net
            .child(pid)
            .try_wait()
            .expect("wait for the driver")
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the driver did not finish within {DRIVER_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = fs::read_to_string(&out).unwrap_or_default();
    assert!(status.success(), "driver failed ({status}):\n{out}");
    // Recovery: tasks that were not pinned all answer, and none ran on the cut host.
    assert_eq!(
        line(&out, "unpinned "),
        "[0, 1, 4, 9, 16, 25, 36, 49] on the cut host 0",
        "{out}"
    );
    // A bounded error: the value made on the cut host cannot be fetched, and rebuilding it
    // needs `gamma`, which no reachable node has.
    let lost = line(&out, "gamma value ");
    assert!(
        lost == "error ResourceUnavailable" || lost == "error ObjectLost",
        "the value on the cut host fails with a clear error, got `{lost}`:\n{out}"
    );
    hosts.net.restore(2);
    // The cut node was declared dead; once its link is back it rejoins as a new incarnation.
    let st = hosts.wait_for_status(|s| s.contains("nodes: 3 alive"));
    eprintln!("after the link came back:\n{st}");
    let after = hosts.drive(&["unpinned"]);
    assert_eq!(line(&after, "unpinned "), "[0, 1, 4, 9, 16, 25, 36, 49]");
}
