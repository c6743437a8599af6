//! A real two-node test cluster: a head and a node (`raykit start --block`, 2 CPUs each) on
//! 127.0.0.1, and driver programs run against them with `RAYKIT_ADDRESS`. Each cluster has its
//! own ports and `RAYKIT_HOME`; every wait is bounded, and every process it starts is killed
//! when it is dropped, after a passed or a failed test (on drop, so on panic too; workers die
//! with their daemons).
//!
//! The head declares the custom resource `alpha` and the node `beta`, so drivers can pin tasks
//! and actors to either node.

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use raykit::cluster::records;

/// The token of every test cluster.
pub const TOKEN: &str = "test-token-tasks-0123456789";
/// The longest a daemon may take to come up, or a status request to answer.
pub const STEP: Duration = Duration::from_secs(15);
/// The longest a driver scenario may take (debug builds, the executable uploaded first).
pub const DRIVER_LIMIT: Duration = Duration::from_secs(120);

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// One test's cluster: its `RAYKIT_HOME`, its daemons and drivers. Dropping it kills them all
/// and shows their output when the test failed.
#[derive(Debug)]
pub struct Cluster {
    home: PathBuf,
    children: Vec<(String, Child)>,
    port: u16,
    /// The `raykit` CLI binary.
    cli: &'static str,
    /// The driver binary.
    driver: &'static str,
    /// Environment variables of every process of the cluster.
    env: Vec<(String, String)>,
}

impl Cluster {
    /// A head and a node, both joined, started with the CLI binary `cli`; drivers run the
    /// binary `driver`.
    pub fn start(name: &str, cli: &'static str, driver: &'static str) -> Cluster {
        let head = ["--num-cpus", "2", "--resources", r#"{"alpha": 100}"#].map(String::from);
        let node = ["--num-cpus", "2", "--resources", r#"{"beta": 100}"#].map(String::from);
        let mut c = Cluster::start_shaped(name, cli, &head, &node, &[]);
        c.driver = driver;
        c
    }

    /// A head started with the `raykit start` arguments `head` and a node with `node`, both
    /// joined; every process of the cluster (daemons, their workers, drivers) gets the
    /// environment variables `env`.
    pub fn start_shaped(
        name: &str,
        cli: &'static str,
        head: &[String],
        node: &[String],
        env: &[(&str, &str)],
    ) -> Cluster {
        static N: AtomicUsize = AtomicUsize::new(0);
        let home = std::env::temp_dir().join(format!(
            "raykit-tasks-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&home);
        fs::create_dir_all(&home).expect("create the test's RAYKIT_HOME");
        let mut c = Cluster {
            home,
            children: Vec::new(),
            port: free_port(),
            cli,
            driver: "",
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let port = c.port.to_string();
        let mut args = vec!["--head".to_owned(), "--port".to_owned(), port];
        args.extend(head.iter().cloned());
        c.spawn_daemon("head", &args.iter().map(String::as_str).collect::<Vec<_>>());
        c.wait_for_status(STEP, |s| s.contains("nodes: 1 alive"));
        let mut args = vec!["--address".to_owned(), c.address()];
        args.extend(node.iter().cloned());
        c.spawn_daemon("node", &args.iter().map(String::as_str).collect::<Vec<_>>());
        c.wait_for_status(STEP, |s| s.contains("nodes: 2 alive"));
        c
    }

    /// Drivers of this cluster run the binary `driver` from now on.
    pub fn set_driver(&mut self, driver: &'static str) {
        self.driver = driver;
    }

    /// The cluster's `RAYKIT_HOME`, where its processes' output goes.
    pub fn home(&self) -> &std::path::Path {
        &self.home
    }

    /// The head's address.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the process `name` writes its stdout.
    pub fn out_path(&self, name: &str) -> PathBuf {
        self.home.join(format!("{name}.out"))
    }

    /// Where the process `name` writes its stderr.
    pub fn err_path(&self, name: &str) -> PathBuf {
        self.home.join(format!("{name}.err"))
    }

    /// The contents of `path`, empty when it cannot be read.
    pub fn read(&self, path: PathBuf) -> String {
        fs::read_to_string(path).unwrap_or_default()
    }

    /// Starts `cmd` as the process `name` of this cluster.
    pub fn spawn(&mut self, name: &str, mut cmd: Command) {
        let out = fs::File::create(self.out_path(name)).expect("create an output file");
        let err = fs::File::create(self.err_path(name)).expect("create an output file");
        cmd.env("RAYKIT_HOME", &self.home)
            .env("RAYKIT_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().expect("spawn a process");
        self.children.push((name.to_owned(), child));
    }

    /// Starts a daemon (`raykit start .. --block`) as the process `name`.
    pub fn spawn_daemon(&mut self, name: &str, args: &[&str]) {
        let mut cmd = Command::new(self.cli);
        cmd.arg("start")
            .args(args)
            .arg("--block")
            .env("RAYKIT_TOKEN", TOKEN)
            .env_remove("RAYKIT_ADDRESS");
        self.spawn(name, cmd);
    }

    /// Starts the driver with `args` against this cluster.
    pub fn spawn_driver(&mut self, name: &str, args: &[&str]) {
        self.spawn_driver_with(name, args, &[]);
    }

    /// Starts the driver with `args` and the environment variables `env` against this cluster.
    pub fn spawn_driver_with(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) {
        let mut cmd = Command::new(self.driver);
        cmd.args(args)
            .env("RAYKIT_ADDRESS", self.address())
            .env("RAYKIT_TOKEN", TOKEN)
            .envs(env.iter().copied());
        self.spawn(name, cmd);
    }

    /// The process `name`.
    pub fn child(&mut self, name: &str) -> &mut Child {
        &mut self
            .children
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect("no such process")
            .1
    }

    /// Waits (at most [`DRIVER_LIMIT`]) for the process `name`; returns status and stdout.
    pub fn wait(&mut self, name: &str) -> (ExitStatus, String) {
        self.wait_limited(name, DRIVER_LIMIT)
    }

    /// Waits (at most `limit`) for the process `name`; returns status and stdout.
    pub fn wait_limited(&mut self, name: &str, limit: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child(name).try_wait().expect("wait for a process") {
                break status;
            }
            if Instant::now() > deadline {
                panic!(
                    "`{name}` did not finish within {limit:?}; output:\n{}{}",
                    self.read(self.out_path(name)),
                    self.read(self.err_path(name))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.read(self.out_path(name)))
    }

    /// Runs the driver with `args` to completion and returns its output; panics if it fails.
    pub fn drive(&mut self, name: &str, args: &[&str]) -> String {
        self.drive_with(name, args, &[])
    }

    /// [`Cluster::drive`] with the environment variables `env`.
    pub fn drive_with(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
        self.spawn_driver_with(name, args, env);
        let start = Instant::now();
        let (status, out) = self.wait(name);
        assert!(
            status.success(),
            "driver `{}` failed ({status}):\n{out}{}",
            args.join(" "),
            self.read(self.err_path(name))
        );
        eprintln!(
            "driver `{}` took {:.1} s",
            args.join(" "),
            start.elapsed().as_secs_f64()
        );
        out
    }

    /// What `raykit status` prints now.
    pub fn status(&self) -> String {
        let out = Command::new(self.cli)
            .args(["status", "--address", &self.address()])
            .env("RAYKIT_HOME", &self.home)
            .env("RAYKIT_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .output()
            .expect("run raykit status");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `raykit status` until `ok` holds (panics after `within`); returns that status.
    pub fn wait_for_status(&self, within: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let out = self.status();
            if ok(&out) {
                return out;
            }
            if Instant::now() > deadline {
                panic!("status never matched within {within:?}; last:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node ids in `raykit status`: (head, other).
    pub fn node_ids(&self) -> (String, String) {
        let st = self.status();
        let id = |l: &str| l.split_whitespace().next().unwrap_or_default().to_owned();
        let head = st
            .lines()
            .find(|l| l.starts_with("  node-") && l.contains(" head "))
            .map(id);
        let other = st
            .lines()
            .find(|l| l.starts_with("  node-") && !l.contains(" head "))
            .map(id);
        match (head, other) {
            (Some(h), Some(o)) => (h, o),
            _ => panic!("two nodes expected in:\n{st}"),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Drivers first, then the node, then the head.
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(entries) = fs::read_dir(self.home.join("daemons")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_suffix(".json").and_then(|p| p.parse().ok()) {
                    records::kill(pid);
                }
            }
        }
        if std::thread::panicking() {
            for (name, _) in &self.children {
                eprintln!(
                    "---- output of {name}:\n{}{}",
                    self.read(self.out_path(name)),
                    self.read(self.err_path(name))
                );
            }
        }
        let _ = fs::remove_dir_all(&self.home);
    }
}

/// The rest of the first line of `out` starting with `prefix`.
pub fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{out}"))
}
