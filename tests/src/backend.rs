//! Every behaviour test runs on both backends from the same body.
//!
//! A test file names its runtime's shape once, with [`suite!`](crate::suite):
//!
//! ```ignore
//! raykit_tests::suite!(Shape::cpus(4).resource("custom", 1.0));
//! ```
//!
//! That defines the file's `init()`, which every test calls first, and one more test,
//! `on_a_cluster`. Run normally, the tests of the file run embedded, in the test process, with
//! `raykit::init_with` of the shape. `on_a_cluster` starts a real cluster of separate processes
//! with the same resources in total (a head, and a node holding the custom resources and GPUs,
//! on 127.0.0.1), then runs this same test binary again as a driver of that cluster
//! ([`BACKEND_ENV`] set to `cluster`, `RAYKIT_ADDRESS` to the head), every test but itself, and
//! fails with that run's report when any test failed there. Its workers are started by the
//! cluster's nodes from this same executable, so a task runs the same code it runs embedded.
//!
//! `RAYKIT_TEST_FILTER=NAME` narrows the cluster run to the tests whose names contain `NAME`
//! (`cargo test --test tasks on_a_cluster` with it runs one test on a cluster).
//!
//! Tasks reach the test's gates, gauges and counters by name (see the crate root); on a
//! cluster those live in files of a scratch directory ([`SCRATCH_ENV`]) that the driver and
//! every worker process of the cluster share, since all run on this host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, TOKEN};

/// Set to `cluster` in a test process that is a cluster's driver, and in its workers.
pub const BACKEND_ENV: &str = "RAYKIT_TEST_BACKEND";
/// The scratch directory the processes of a cluster run share (set with [`BACKEND_ENV`]).
pub const SCRATCH_ENV: &str = "RAYKIT_TEST_SCRATCH";
/// Narrows a cluster run to the tests whose names contain it.
pub const FILTER_ENV: &str = "RAYKIT_TEST_FILTER";
/// The longest a file's tests may take on a cluster, all of them.
pub const CLUSTER_RUN_LIMIT: Duration = Duration::from_secs(900);

/// Whether this process runs on a cluster: a test process driving one, or one of its workers.
pub fn on_cluster() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var(BACKEND_ENV).is_ok_and(|v| v == "cluster"))
}

/// On a cluster, the scratch directory its processes share; `None` embedded.
pub fn scratch() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        on_cluster()
            .then(|| std::env::var_os(SCRATCH_ENV).map(PathBuf::from))
            .flatten()
    })
    .as_deref()
}

/// Whether this run is on a cluster, where the behaviour `what` still differs from the
/// embedded runtime's: a test skips the checks of that behaviour when this returns true (it
/// says so on stderr). Every call names a difference still to be fixed; none may stay.
pub fn known_difference(what: &str) -> bool {
    if on_cluster() {
        eprintln!("known difference on a cluster, not checked: {what}");
    }
    on_cluster()
}

/// The resources a test file's runtime declares: embedded, one node with all of them; on a
/// cluster, the same totals over two nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    cpus: f64,
    gpus: f64,
    resources: BTreeMap<String, f64>,
    namespace: Option<String>,
}

impl Shape {
    /// `n` CPUs, no GPUs, no custom resources.
    pub fn cpus(n: impl Into<f64>) -> Shape {
        Shape {
            cpus: n.into(),
            gpus: 0.0,
            resources: BTreeMap::new(),
            namespace: None,
        }
    }

    /// As many CPUs as the machine has cores (what `raykit::init()` declares).
    pub fn machine() -> Shape {
        Shape::cpus(
            std::thread::available_parallelism()
                .map(|n| n.get() as f64)
                .unwrap_or(1.0),
        )
    }

    /// Also `n` GPUs.
    pub fn gpus(mut self, n: impl Into<f64>) -> Shape {
        self.gpus = n.into();
        self
    }

    /// Also `amount` of the custom resource `name`.
    pub fn resource(mut self, name: &str, amount: impl Into<f64>) -> Shape {
        self.resources.insert(name.to_owned(), amount.into());
        self
    }

    /// The job's namespace for named actors (`Config::namespace`), in both modes.
    pub fn namespace(mut self, namespace: &str) -> Shape {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// What a driver of the cluster sets: no resources (the nodes declare them).
    fn driver_config(&self) -> raykit::Config {
        match &self.namespace {
            Some(ns) => raykit::Config::default().namespace(ns.clone()),
            None => raykit::Config::default(),
        }
    }

    /// The embedded runtime's configuration.
    pub fn config(&self) -> raykit::Config {
        let mut c = raykit::Config::default()
            .num_cpus(self.cpus)
            .num_gpus(self.gpus);
        for (name, amount) in &self.resources {
            c = c.resource(name.clone(), *amount);
        }
        if let Some(ns) = &self.namespace {
            c = c.namespace(ns.clone());
        }
        c
    }

    /// `raykit start` arguments of the head: no resources, as Ray advises for a head. Every
    /// task and actor runs in the worker processes of the other node, and objects travel
    /// between the driver, the head and that node.
    fn head_args(&self) -> Vec<String> {
        ["--num-cpus", "0", "--num-gpus", "0"]
            .map(String::from)
            .to_vec()
    }

    /// `raykit start` arguments of the second node: the whole shape, so whatever fits the
    /// embedded node fits this one (placement over several nodes has tests of its own).
    fn node_args(&self) -> Vec<String> {
        let entries: Vec<String> = self
            .resources
            .iter()
            .map(|(name, amount)| format!("{name:?}: {amount}"))
            .collect();
        vec![
            "--num-cpus".into(),
            fmt_amount(self.cpus),
            "--num-gpus".into(),
            fmt_amount(self.gpus),
            "--resources".into(),
            format!("{{{}}}", entries.join(", ")),
        ]
    }
}

fn fmt_amount(x: f64) -> String {
    format!("{x}")
}

/// Starts the file's runtime: embedded with the shape, or, in a cluster run, joins the
/// cluster (`RAYKIT_ADDRESS`), whose nodes declare the shape. Every test calls it first (through
/// the `init()` that [`suite!`](crate::suite) defines).
pub fn init(shape: &Shape) -> raykit::RuntimeInfo {
    if on_cluster() {
        raykit::init_with(shape.driver_config()).expect("join the test cluster")
    } else {
        raykit::init_with(shape.config()).expect("init_with the file's shape")
    }
}

/// The body of a file's `on_a_cluster` test: runs this test binary's other tests as a driver
/// of a new cluster of `shape`, started with the `raykit` binary `cli`; panics with their
/// report when one fails. In a cluster run itself it does nothing.
pub fn run_on_cluster(shape: &Shape, cli: &'static str) {
    if on_cluster() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let file = exe
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('-').next())
        .unwrap_or("tests")
        .to_owned();
    let scratch = std::env::temp_dir().join(format!(
        "raykit-scratch-{file}-{}-{}",
        std::process::id(),
        crate::unique_id()
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("create the scratch directory");
    let _cleanup = RemoveOnDrop(scratch.clone());
    let env = [
        (BACKEND_ENV, "cluster".to_owned()),
        (SCRATCH_ENV, scratch.display().to_string()),
        // No test here stops a node; a node busy starting a thousand workers on this small
        // machine may miss the default 3 s of heartbeats, which only the fault tests need.
        ("RAYKIT_NODE_TIMEOUT_MS", "30000".to_owned()),
    ];
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut cluster = Cluster::start_shaped(
        &file,
        cli,
        &shape.head_args(),
        &shape.node_args(),
        &env_refs,
    );

    let mut cmd = Command::new(&exe);
    cmd.args(["--skip", "on_a_cluster", "--test-threads", "2"]);
    if let Some(filter) = std::env::var(FILTER_ENV).ok().filter(|f| !f.is_empty()) {
        cmd.arg(filter);
    }
    cmd.env("RAYKIT_ADDRESS", cluster.address())
        .env("RAYKIT_TOKEN", TOKEN)
        .envs(env_refs.iter().copied())
        .env_remove("RUST_TEST_THREADS");
    let started = Instant::now();
    cluster.spawn("driver", cmd);
    let (status, out) = cluster.wait_limited("driver", CLUSTER_RUN_LIMIT);
    let summary = out
        .lines()
        .rev()
        .find(|l| l.starts_with("test result:"))
        .unwrap_or("no test result")
        .to_owned();
    eprintln!(
        "on a cluster ({:.1} s): {summary}",
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        // The whole output of the run (and of the daemons) follows from the cluster's drop.
        let failed: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("test ") && l.ends_with("FAILED"))
            .collect();
        panic!(
            "on a cluster ({status}), {summary}:\n{}\n(the driver's output follows)",
            failed.join("\n")
        );
    }
}

/// Removes a directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Declares a test file's runtime shape: defines `fn init()` (call it first in every test)
/// and the test `on_a_cluster`, which runs every other test of the file again as the driver
/// of a real two-node cluster of that shape (see [`backend`](crate::backend)).
///
/// `suite!(shape, serial)` makes `init()` also take [`serial`](crate::serial) and return its
/// guard, for files whose every test reads free resources or counts running tasks.
#[macro_export]
macro_rules! suite {
    ($shape:expr, serial) => {
        $crate::suite!(@common $shape);

        /// Starts this file's runtime and takes the file's one-test-at-a-time lock: hold the
        /// guard for the whole test.
        fn init() -> ::std::sync::MutexGuard<'static, ()> {
            let serial = $crate::serial();
            $crate::backend::init(&shape());
            serial
        }
    };
    ($shape:expr) => {
        $crate::suite!(@common $shape);

        /// Starts this file's runtime: embedded, or joining the cluster of a cluster run.
        fn init() -> raykit::RuntimeInfo {
            $crate::backend::init(&shape())
        }
    };
    (@common $shape:expr) => {
        /// The shape of every test's runtime in this file (one runtime per process).
        fn shape() -> $crate::backend::Shape {
            use $crate::backend::Shape;
            $shape
        }

        /// Every other test of this file, again, on a real cluster of separate processes.
        #[test]
        fn on_a_cluster() {
            $crate::backend::run_on_cluster(&shape(), env!("CARGO_BIN_EXE_raykit-cli"));
        }
    };
}
