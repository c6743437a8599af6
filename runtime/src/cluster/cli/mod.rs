//! The `raykit` command line: `start` (a head or a node daemon, detached or `--block`),
//! `status` (the cluster as the head sees it) and `stop` (the daemons recorded on this host).
//! `status` and `stop` first remove what daemons killed on this host left
//! ([`records::sweep`]), so neither shows a daemon or a cluster that is gone.
//!
//! This module parses, checks and prints; the daemons themselves are [`crate::cluster::daemon`]. Its
//! output to the terminal is the only printing the runtime library does.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::cluster::daemon::{self, DaemonSpec};
use crate::cluster::proto::tls;
use crate::cluster::proto::{
    ClusterStatus, Connection, Message, NodeStatus, Role, HANDSHAKE_TIMEOUT,
};
use crate::cluster::records::{self, DaemonRecord};
use crate::error::{Error, ErrorKind, Result};

/// The head's port when `--port` is not given.
const DEFAULT_HEAD_PORT: u16 = 6380;

/// How long `raykit start` waits for a detached daemon to be up.
const DETACH_TIMEOUT: Duration = Duration::from_secs(15);

/// How long `raykit stop` waits for a daemon to exit after asking it to.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Tells a `--block` daemon started by `raykit start` where its output goes.
const LOG_ENV: &str = "RAYKIT_DAEMON_LOG";

#[derive(Debug, Parser)]
#[command(
    name = "raykit",
    version,
    about = "Start, inspect and stop raykit cluster daemons",
    after_help = "Daemons record their address and token in $RAYKIT_HOME (default /tmp/raykit-$USER); \
                  `status`, `stop` and drivers on the same host find them there."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a node daemon: the head of a new cluster (--head) or a node joining one (--address).
    Start(StartArgs),
    /// Show the cluster: nodes, resources used/total, actors and tasks by state.
    /// Records that daemons killed on this host left are removed first.
    Status(StatusArgs),
    /// Stop the daemons started on this host (records of daemons that are gone are removed).
    Stop,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["head", "address"])))]
struct StartArgs {
    /// Start the head of a new cluster (the head is also a worker node).
    #[arg(long)]
    head: bool,
    /// Join the cluster whose head is at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    address: Option<String>,
    /// The port to listen on [default: 6380 for the head, any free port for a node].
    #[arg(long)]
    port: Option<u16>,
    /// The interface to listen on; 0.0.0.0 accepts other hosts.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The IP other hosts reach this daemon at [default: the --bind address when it is a
    /// specific one; for a node on 0.0.0.0 the local address of its connection to the head;
    /// for a head on 0.0.0.0 the address of a network interface other than loopback].
    #[arg(long, value_name = "IP", env = "RAYKIT_NODE_IP_ADDRESS", value_parser = parse_node_ip)]
    node_ip_address: Option<IpAddr>,
    /// CPUs this node offers [default: the machine's cores].
    #[arg(long, value_name = "N")]
    num_cpus: Option<f64>,
    /// GPUs this node offers [default: 0].
    #[arg(long, value_name = "N")]
    num_gpus: Option<f64>,
    /// Custom resources as JSON, e.g. '{"custom": 2}'.
    #[arg(long, value_name = "JSON")]
    resources: Option<String>,
    /// The cluster token [default for a head: a new random one; for a node: the recorded one].
    /// Prefer RAYKIT_TOKEN or --token-file: other users of the host can read command lines.
    #[arg(long, env = "RAYKIT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the cluster token (its first line).
    #[arg(long, value_name = "PATH", env = "RAYKIT_TOKEN_FILE")]
    token_file: Option<std::path::PathBuf>,
    /// This daemon's TLS certificate chain (PEM); with --tls-key and --tls-ca, every
    /// connection of the daemon and its workers uses mutual TLS.
    #[arg(long, value_name = "PATH", env = "RAYKIT_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PATH", env = "RAYKIT_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    /// The cluster's CA certificate (PEM): peers must present a certificate it signed.
    #[arg(long, value_name = "PATH", env = "RAYKIT_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    /// Stay in the foreground instead of detaching.
    #[arg(long)]
    block: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The head to ask [default: the cluster recorded on this host].
    #[arg(long, value_name = "HOST:PORT", env = "RAYKIT_ADDRESS")]
    address: Option<String>,
    /// The cluster token [default: the recorded one]. Prefer RAYKIT_TOKEN or --token-file.
    #[arg(long, env = "RAYKIT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the cluster token (its first line).
    #[arg(long, value_name = "PATH", env = "RAYKIT_TOKEN_FILE")]
    token_file: Option<std::path::PathBuf>,
}

/// Runs the `raykit` command line with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let default_level = match cli.command {
        Command::Start(_) => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    init_logging(default_level);
    let result = match cli.command {
        Command::Start(args) => start(args),
        Command::Status(args) => status(args),
        Command::Stop => stop(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr at `RAYKIT_LOG` (error, warn, info, debug, trace) or `default`.
fn init_logging(default: tracing::Level) {
    let level = std::env::var("RAYKIT_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(default);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn parse_node_ip(text: &str) -> std::result::Result<IpAddr, String> {
    crate::cluster::addresses::parse_node_ip(text).map_err(|e| e.to_string())
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// The resources a node declares: `CPU`, `GPU`, then the custom ones.
fn node_resources(args: &StartArgs) -> Result<BTreeMap<String, f64>> {
    let check = |name: &str, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(config_error(format!(
                "resource `{name}` must be a finite number >= 0, got {v}"
            )))
        }
    };
    let cpus = match args.num_cpus {
        Some(n) => check("CPU", n)?,
        None => std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
    };
    let mut out = BTreeMap::new();
    out.insert("CPU".to_owned(), cpus);
    out.insert(
        "GPU".to_owned(),
        check("GPU", args.num_gpus.unwrap_or(0.0))?,
    );
    if let Some(json) = &args.resources {
        let custom: BTreeMap<String, f64> = serde_json::from_str(json).map_err(|e| {
            config_error(format!(
                "--resources must be a JSON object of numbers such as '{{\"custom\": 2}}': {e}"
            ))
        })?;
        for (name, amount) in custom {
            if name.is_empty() {
                return Err(config_error("--resources has an empty resource name"));
            }
            if name == "CPU" || name == "GPU" {
                return Err(config_error(format!(
                    "--resources cannot set `{name}`: use --num-{}s",
                    name.to_lowercase()
                )));
            }
            out.insert(name.clone(), check(&name, amount)?);
        }
    }
    Ok(out)
}

fn start(args: StartArgs) -> Result<ExitCode> {
    let resources = node_resources(&args)?;
    // The daemon, a detached copy of it and its workers read TLS settings from the environment.
    for (name, value) in [
        (tls::CERT_ENV, &args.tls_cert),
        (tls::KEY_ENV, &args.tls_key),
        (tls::CA_ENV, &args.tls_ca),
    ] {
        if let Some(path) = value {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            std::env::set_var(name, path);
        }
    }
    tls::current()?;
    let token = match given_token(args.token.clone(), args.token_file.as_deref())? {
        Some(t) => t,
        None if args.head => crate::cluster::new_token()?,
        None => {
            let address = args.address.as_deref().unwrap_or_default();
            match records::read_cluster()? {
                Some(c) if c.address == address => c.token,
                _ => {
                    return Err(config_error(format!(
                        "no token for the cluster at {address}: set RAYKIT_TOKEN or \
                         RAYKIT_TOKEN_FILE (`raykit start --head` prints it)"
                    )))
                }
            }
        }
    };
    if !args.block {
        return detach(&args, &token);
    }
    let spec = DaemonSpec {
        head: args.head,
        head_address: args.address.clone(),
        bind: args.bind,
        port: args
            .port
            .unwrap_or(if args.head { DEFAULT_HEAD_PORT } else { 0 }),
        node_ip: args.node_ip_address,
        resources,
        token,
        log: std::env::var_os(LOG_ENV).map(Into::into),
    };
    daemon::run(spec, |record| {
        println!("{}", started_message(record));
        let _ = std::io::stdout().flush();
    })?;
    Ok(ExitCode::SUCCESS)
}

fn started_message(r: &DaemonRecord) -> String {
    let what = if r.head { "head" } else { "node" };
    let mut msg = format!(
        "raykit {what} started at {} ({}, pid {})",
        r.listen, r.node_id, r.pid
    );
    if let Some(log) = &r.log {
        msg += &format!("\n  log:          {}", log.display());
    }
    msg += &format!(
        "\n  token:        {} (recorded in {}; elsewhere give it as RAYKIT_TOKEN or in a file \
         named by RAYKIT_TOKEN_FILE)\
         \n  add a node:   raykit start --address {}\
         \n  drivers:      RAYKIT_ADDRESS={}",
        r.token,
        records::home().display(),
        r.cluster,
        r.cluster,
    );
    if let Some(adv) = r.advertised.as_ref().filter(|a| r.head && **a != r.listen) {
        msg += &format!(
            "\n  other hosts:  raykit start --address {adv} --bind 0.0.0.0; RAYKIT_ADDRESS={adv}"
        );
    }
    msg += "\n  status, stop: raykit status; raykit stop";
    msg
}

/// Starts the daemon again with `--block` in a new process group, its output in a log file,
/// and returns once it has recorded itself (or failed).
/// The token given by `--token`/`RAYKIT_TOKEN` or else by `--token-file`/`RAYKIT_TOKEN_FILE`.
fn given_token(token: Option<String>, file: Option<&std::path::Path>) -> Result<Option<String>> {
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        return Ok(Some(t));
    }
    file.map(records::read_token_file).transpose()
}

fn detach(args: &StartArgs, token: &str) -> Result<ExitCode> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::new(
            ErrorKind::System,
            format!("cannot find this program's executable: {e}"),
        )
    })?;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let role = if args.head { "head" } else { "node" };
    let log_path =
        records::logs_dir()?.join(format!("{role}-{started}-{}.log", std::process::id()));
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| {
            Error::new(
                ErrorKind::System,
                format!("cannot create {}: {e}", log_path.display()),
            )
        })?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::new(ErrorKind::System, format!("cannot duplicate the log: {e}")))?;

    let mut cmd = std::process::Command::new(exe);
    cmd.arg("start");
    match &args.address {
        Some(address) if !args.head => cmd.args(["--address", address]),
        _ => cmd.arg("--head"),
    };
    if let Some(port) = args.port {
        cmd.arg("--port").arg(port.to_string());
    }
    cmd.arg("--bind").arg(args.bind.to_string());
    if let Some(ip) = args.node_ip_address {
        cmd.arg("--node-ip-address").arg(ip.to_string());
    }
    if let Some(n) = args.num_cpus {
        cmd.arg("--num-cpus").arg(n.to_string());
    }
    if let Some(n) = args.num_gpus {
        cmd.arg("--num-gpus").arg(n.to_string());
    }
    if let Some(json) = &args.resources {
        cmd.arg("--resources").arg(json);
    }
    cmd.arg("--block")
        // The token goes through the environment: other users can read command lines.
        .env("RAYKIT_TOKEN", token)
        .env("RAYKIT_HOME", records::home())
        .env(LOG_ENV, &log_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // A group of its own: the terminal's Ctrl-C and hang-up do not reach the daemon.
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(
            ErrorKind::System,
            format!("cannot start the daemon process: {e}"),
        )
    })?;
    let pid = child.id();
    let deadline = Instant::now() + DETACH_TIMEOUT;
    loop {
        if let Some(record) = records::read_daemon(pid)? {
            println!("{}", started_message(&record));
            return Ok(ExitCode::SUCCESS);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::new(
                ErrorKind::System,
                format!(
                    "the {role} daemon exited ({status}) before it was up:\n{}",
                    log_tail(&log_path)
                ),
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(
                ErrorKind::System,
                format!(
                    "the {role} daemon was not up within {DETACH_TIMEOUT:?}:\n{}",
                    log_tail(&log_path)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of a log, to show why a daemon failed.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("{tail}\n(log: {})", path.display())
}

/// A small runtime for the CLI's own requests.
fn client_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::System, format!("cannot start a runtime: {e}")))
}

fn status(args: StatusArgs) -> Result<ExitCode> {
    // What daemons killed on this host left is never shown as a cluster.
    let swept = records::sweep();
    if !swept.is_empty() {
        eprintln!("{swept}");
    }
    let recorded = records::read_cluster()?;
    let address = match args.address.filter(|a| !a.is_empty()) {
        Some(a) => a,
        None => match &recorded {
            Some(c) => c.address.clone(),
            None => {
                let gone = match &swept.cluster {
                    Some(a) => format!(" (the cluster at {a} has no daemon running here)"),
                    None => String::new(),
                };
                return Err(config_error(format!(
                    "no cluster recorded in {}{gone}: pass --address HOST:PORT or set RAYKIT_ADDRESS",
                    records::home().display()
                )));
            }
        },
    };
    let token = match given_token(args.token, args.token_file.as_deref())? {
        Some(t) => t,
        None => match recorded.filter(|c| c.address == address) {
            Some(c) => c.token,
            None => {
                return Err(config_error(format!(
                    "no token for the cluster at {address}: set RAYKIT_TOKEN or RAYKIT_TOKEN_FILE"
                )))
            }
        },
    };
    let (st, dead) = client_runtime()?.block_on(async {
        let (mut conn, _) = Connection::connect(&address, &token, Role::Client).await?;
        let st = conn
            .request(&Message::StatusRequest, HANDSHAKE_TIMEOUT)
            .await?;
        let dead = match conn
            .request(&Message::DeadNodesRequest, HANDSHAKE_TIMEOUT)
            .await?
        {
            Message::DeadNodes(dead) => dead,
            Message::Failed { error } => return Err(error),
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "{address} answered DeadNodesRequest with a {} message",
                        other.name()
                    ),
                ))
            }
        };
        match st {
            Message::Status(st) => Ok((st, dead)),
            Message::Failed { error } => Err(error),
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{address} answered StatusRequest with a {} message",
                    other.name()
                ),
            )),
        }
    })?;
    print!("{}", format_status(&address, &st));
    print!("{}", format_dead_nodes(&dead));
    Ok(ExitCode::SUCCESS)
}

/// `12`, `0.5`: amounts without a useless `.0`.
fn amount(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn format_node(n: &NodeStatus) -> String {
    let mut line = format!(
        "  {}  {:<21}  {:<5}  ",
        n.info.node_id,
        n.info.address,
        if n.head { "head" } else { "" }
    );
    if n.alive {
        line += "alive";
    } else {
        line += &format!(
            "dead ({})",
            n.death_reason.as_deref().unwrap_or("unknown reason")
        );
    }
    for (name, total) in &n.info.resources {
        if n.alive {
            let available = n.load.available.get(name).copied().unwrap_or(0.0);
            let used = (total - available).max(0.0);
            line += &format!("  {name} {}/{}", amount(used), amount(*total));
        } else {
            line += &format!("  {name} {}", amount(*total));
        }
    }
    if n.alive {
        line += &format!(
            "  actors {}  running {}  objects {} ({} bytes)",
            n.load.actors.alive, n.load.tasks.running, n.load.objects, n.load.object_bytes
        );
    }
    line
}

/// The short "recently dead" list of `raykit status`: the dead nodes the head removed from its
/// table after their grace period, most recent first.
fn format_dead_nodes(dead: &[NodeStatus]) -> String {
    if dead.is_empty() {
        return String::new();
    }
    let mut out = format!("recently dead: {}\n", dead.len());
    for n in dead.iter().rev() {
        out += &format!(
            "    {}  {}  {}  last heard {} s ago\n",
            n.info.node_id,
            n.info.address,
            n.death_reason.as_deref().unwrap_or("unknown reason"),
            n.since_heartbeat_ms / 1000
        );
    }
    out
}

/// The text `raykit status` prints.
fn format_status(address: &str, st: &ClusterStatus) -> String {
    let alive = st.nodes.iter().filter(|n| n.alive).count();
    let mut out = format!(
        "cluster at {address} (head {})\nnodes: {alive} alive, {} dead\n",
        st.head_node_id,
        st.nodes.len() - alive
    );
    for n in &st.nodes {
        out += &format_node(n);
        out.push('\n');
    }
    let a = st.actors;
    let t = st.tasks;
    out += &format!(
        "actors: {} pending, {} alive, {} restarting, {} dead\n\
         tasks: {} waiting, {} running, {} finished, {} failed\n\
         jobs: {}\n\
         head tables: {} objects, {} tasks\n",
        a.pending,
        a.alive,
        a.restarting,
        a.dead,
        t.waiting,
        t.running,
        t.finished,
        t.failed,
        st.jobs,
        st.objects,
        st.lineage
    );
    out
}

/// Asks one daemon to stop, over an authenticated connection.
async fn ask_to_stop(r: &DaemonRecord) -> Result<()> {
    let (mut conn, _) = Connection::connect(&r.listen, &r.token, Role::Client).await?;
    match conn.request(&Message::Stop, HANDSHAKE_TIMEOUT).await? {
        Message::Stopping => Ok(()),
        Message::Failed { error } => Err(error),
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("{} answered Stop with a {} message", r.listen, other.name()),
        )),
    }
}

fn stop() -> Result<ExitCode> {
    // Records of daemons that are gone are removed, with their directories, not listed.
    let swept = records::sweep();
    if !swept.is_empty() {
        println!("{swept}");
    }
    let mut daemons = records::daemons();
    if daemons.is_empty() {
        println!(
            "no raykit daemons recorded in {}",
            records::home().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Nodes first, so that they leave a head that is still there to hear it.
    daemons.sort_by_key(|r| r.head);
    let rt = client_runtime()?;
    let mut failed = 0;
    for r in &daemons {
        let what = if r.head { "head" } else { "node" };
        if !r.runs() {
            // It ended since the sweep.
            records::remove_daemon(r.pid);
            println!(
                "{what} at {} (pid {}) was not running; removed its record",
                r.listen, r.pid
            );
            continue;
        }
        let asked = rt.block_on(ask_to_stop(r));
        let exited = match &asked {
            Ok(()) => records::wait_exit(r.pid, STOP_GRACE),
            Err(e) => {
                eprintln!(
                    "could not ask the {what} at {} to stop ({e}); terminating pid {}",
                    r.listen, r.pid
                );
                false
            }
        };
        let exited = exited
            || (r.runs() && records::terminate(r.pid, Duration::from_secs(2)))
            || !records::process_alive(r.pid);
        if exited {
            records::remove_daemon(r.pid);
            records::remove_cluster_if(&r.cluster);
            println!("stopped the {what} at {} (pid {})", r.listen, r.pid);
        } else {
            failed += 1;
            eprintln!(
                "error: the {what} at {} (pid {}) is still running",
                r.listen, r.pid
            );
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("raykit").chain(args.iter().copied()))
    }

    #[test]
    fn start_needs_head_or_address_but_not_both() {
        assert!(parse(&["start"]).is_err());
        assert!(parse(&["start", "--head", "--address", "a:1"]).is_err());
        assert!(parse(&["start", "--head", "--port", "7000", "--block"]).is_ok());
        assert!(parse(&["start", "--address", "127.0.0.1:7000", "--num-cpus", "0.5"]).is_ok());
    }

    #[test]
    fn resources_are_json_numbers() {
        let Ok(Cli {
            command: Command::Start(args),
        }) = parse(&[
            "start",
            "--head",
            "--num-cpus",
            "3",
            "--num-gpus",
            "1",
            "--resources",
            r#"{"custom": 2, "ssd": 0.5}"#,
        ])
        else {
            panic!("parse failed");
        };
        let r = node_resources(&args).unwrap();
        assert_eq!(r["CPU"], 3.0);
        assert_eq!(r["GPU"], 1.0);
        assert_eq!(r["custom"], 2.0);
        assert_eq!(r["ssd"], 0.5);
        for bad in [r#"{"CPU": 2}"#, r#"{"x": -1}"#, r#"[1]"#, r#"{"x": "two"}"#] {
            let Ok(Cli {
                command: Command::Start(args),
            }) = parse(&["start", "--head", "--resources", bad])
            else {
                panic!("parse failed");
            };
            assert!(node_resources(&args).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_head_on_every_interface_says_how_other_hosts_reach_it() {
        let mut r = DaemonRecord {
            pid: 7,
            head: true,
            node_id: "node-1".into(),
            listen: "127.0.0.1:6380".into(),
            advertised: Some("10.0.0.1:6380".into()),
            cluster: "127.0.0.1:6380".into(),
            token: "t".into(),
            exe: None,
            log: None,
            started: None,
        };
        let msg = started_message(&r);
        assert!(
            msg.contains("other hosts:  raykit start --address 10.0.0.1:6380 --bind 0.0.0.0"),
            "{msg}"
        );
        assert!(!msg.contains("--token"), "{msg}");
        r.advertised = Some(r.listen.clone());
        assert!(!started_message(&r).contains("other hosts"));
    }
}
