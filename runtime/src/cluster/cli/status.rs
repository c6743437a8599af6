//! `raykit status`: asks the head (the cluster recorded on this host unless told another) to
//! describe the cluster, and prints its nodes, resources, actors, tasks and recently dead
//! nodes.

use std::process::ExitCode;

use clap::Args;

use super::{client_runtime, config_error, given_token};
use crate::cluster::proto::{
    ClusterStatus, Connection, Message, NodeStatus, Role, HANDSHAKE_TIMEOUT,
};
use crate::cluster::records;
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
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

pub(super) fn status(args: StatusArgs) -> Result<ExitCode> {
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
