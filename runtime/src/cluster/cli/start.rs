//! `raykit start`: checks the options, then runs a head or a node daemon in the foreground
//! (`--block`), or starts one detached, in a process group of its own, and returns once it is
//! up.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args};

use super::{config_error, given_token};
use crate::cluster::daemon::{self, DaemonSpec};
use crate::cluster::proto::tls;
use crate::cluster::records::{self, DaemonRecord};
use crate::error::{Error, ErrorKind, Result};

/// The head's port when `--port` is not given.
const DEFAULT_HEAD_PORT: u16 = 6380;

/// How long `raykit start` waits for a detached daemon to be up.
const DETACH_TIMEOUT: Duration = Duration::from_secs(15);

/// Tells a `--block` daemon started by `raykit start` where its output goes.
const LOG_ENV: &str = "RAYKIT_DAEMON_LOG";

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["head", "address"])))]
pub(super) struct StartArgs {
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

fn parse_node_ip(text: &str) -> std::result::Result<IpAddr, String> {
    crate::cluster::addresses::parse_node_ip(text).map_err(|e| e.to_string())
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

pub(super) fn start(args: StartArgs) -> Result<ExitCode> {
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
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
