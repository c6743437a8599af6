//! A private network of "hosts" made of Linux network namespaces, for tests of a cluster
//! spread over several machines: one namespace per host, each with its own address in
//! `10.213.N.0/24` on one bridge, loopback up, reachable from the others and from nothing
//! else. Names start with `rk<pid>` so test binaries running side by side never collide.
//!
//! It needs root and the `ip` binary (installed with `apt-get install -y iproute2` when
//! missing and we are root). When they are not available, [`Net::new`] prints why and
//! returns `None` (the test skips), unless `RAYKIT_REQUIRE_NETNS=1`, which makes it panic.
//! Dropping a [`Net`] kills every process it started and every process left inside its
//! namespaces, then deletes the namespaces, links and bridge it made (on panic too).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};

/// One host of a [`Net`].
#[derive(Debug)]
pub struct Host {
    /// The namespace's name.
    pub netns: String,
    /// The host's address.
    pub ip: String,
    /// The end of its link that stays outside, on the bridge (cut to isolate the host).
    outside: String,
}

/// A private network of hosts; see the module documentation.
#[derive(Debug)]
pub struct Net {
    bridge: String,
    hosts: Vec<Host>,
    children: Vec<Child>,
}

/// Runs `ip ARGS`; panics with its output when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn has_ip() -> bool {
    Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why network namespaces cannot be used here, if they cannot.
fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("network namespaces need root".into());
    }
    if !has_ip() {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "iproute2"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !has_ip() {
            return Some("the `ip` binary (iproute2) is missing and could not be installed".into());
        }
    }
    let probe = format!("rk{}probe", std::process::id());
    let made = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::piped())
        .output();
    match made {
        Ok(o) if o.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).status();
            None
        }
        Ok(o) => Some(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run ip: {e}")),
    }
}

impl Net {
    /// A network of `hosts` hosts (at most 200), or `None` (with the reason printed) when
    /// network namespaces are not available and `RAYKIT_REQUIRE_NETNS` is not `1`.
    pub fn new(hosts: usize) -> Option<Net> {
        assert!((1..=200).contains(&hosts));
        if let Some(why) = unavailable() {
            if std::env::var("RAYKIT_REQUIRE_NETNS").as_deref() == Ok("1") {
                panic!("RAYKIT_REQUIRE_NETNS=1 but {why}");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
        static NEXT: AtomicU8 = AtomicU8::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("rk{}n{n}", std::process::id());
        let mut net = Net {
            bridge: format!("{tag}br"),
            hosts: Vec::new(),
            children: Vec::new(),
        };
        // From here on, Drop removes whatever was made, even if a step below fails.
        ip(&["link", "add", &net.bridge, "type", "bridge"]);
        ip(&["link", "set", &net.bridge, "up"]);
        for i in 0..hosts {
            let host = Host {
                netns: format!("{tag}h{i}"),
                ip: format!("10.213.{n}.{}", i + 1),
                outside: format!("{tag}o{i}"),
            };
            let inside = format!("{tag}i{i}");
            ip(&["netns", "add", &host.netns]);
            net.hosts.push(host);
            let host = net.hosts.last().expect("just pushed");
            ip(&[
                "link",
                "add",
                &host.outside,
                "type",
                "veth",
                "peer",
                "name",
                &inside,
            ]);
            ip(&["link", "set", &inside, "netns", &host.netns]);
            ip(&["link", "set", &host.outside, "master", &net.bridge]);
            ip(&["link", "set", &host.outside, "up"]);
            let exec = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &host.netns, "ip"];
                all.extend_from_slice(args);
                ip(&all);
            };
            exec(&["link", "set", "lo", "up"]);
            exec(&["addr", "add", &format!("{}/24", host.ip), "dev", &inside]);
            exec(&["link", "set", &inside, "up"]);
        }
        Some(net)
    }

    /// The hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The address of host `i`.
    pub fn ip(&self, i: usize) -> &str {
        &self.hosts[i].ip
    }

    /// A command that runs `program` inside host `i` (`ip netns exec`, which execs the program
    /// itself: the child's pid is the program's).
    pub fn command(&self, i: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.hosts[i].netns])
            .arg(program)
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `cmd` (made by [`Net::command`]); the process is killed when the net is dropped.
    pub fn spawn(&mut self, mut cmd: Command) -> u32 {
        let child = cmd.spawn().expect("spawn a process in a namespace");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// The process started by [`Net::spawn`] with `pid`.
    pub fn child(&mut self, pid: u32) -> &mut Child {
        self.children
            .iter_mut()
            .find(|c| c.id() == pid)
            .expect("no such process")
    }

    /// Cuts host `i` off the network: its packets go nowhere until [`Net::restore`].
    pub fn cut(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].outside, "down"]);
    }

    /// Puts host `i` back on the network.
    pub fn restore(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].outside, "up"]);
    }

    /// Processes running inside host `i`.
    pub fn pids(&self, i: usize) -> Vec<u32> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.hosts[i].netns])
            .output();
        out.map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for i in 0..self.hosts.len() {
            for _ in 0..50 {
                let left = self.pids(i);
                if left.is_empty() {
                    break;
                }
                for pid in left {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        for host in &self.hosts {
            let _ = Command::new("ip")
                .args(["link", "del", &host.outside])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("ip")
                .args(["netns", "del", &host.netns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}
