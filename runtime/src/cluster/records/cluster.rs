//! The cluster this host belongs to (`cluster.json`, a [`ClusterRecord`]) and which cluster,
//! with which token, a program joins when told an address.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::files::{read_json, write_json};
use super::home;
use super::token::env_token;
use crate::error::{Error, ErrorKind, Result};

/// The cluster this host belongs to: what `raykit status` and drivers on this host connect to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The head's address, `HOST:PORT`.
    pub address: String,
    /// The cluster token.
    pub token: String,
}

fn cluster_path() -> PathBuf {
    home().join("cluster.json")
}

/// Records the cluster this host belongs to.
pub fn write_cluster(record: &ClusterRecord) -> Result<()> {
    write_json(&cluster_path(), record)
}

/// The cluster this host belongs to, if one is recorded.
pub fn read_cluster() -> Result<Option<ClusterRecord>> {
    read_json(&cluster_path())
}

/// Forgets the cluster record if it names the head at `address`.
pub fn remove_cluster_if(address: &str) {
    if let Ok(Some(c)) = read_cluster() {
        if c.address == address {
            let _ = fs::remove_file(cluster_path());
        }
    }
}

/// The cluster a program joins when told `address` (`RAYKIT_ADDRESS` or `Config::address`),
/// and its token: `RAYKIT_TOKEN`/`RAYKIT_TOKEN_FILE` when set, else the token this host
/// recorded for that cluster, `None` when neither. `auto` names the cluster recorded on this
/// host; an address matches the record when both name the same socket address
/// (`localhost:6380` is the record's `127.0.0.1:6380`).
pub fn resolve_cluster(address: &str) -> Result<(String, Option<String>)> {
    let env_token = env_token()?;
    let recorded = read_cluster()?;
    if address.trim() == "auto" {
        return match recorded {
            Some(r) => Ok((r.address, Some(env_token.unwrap_or(r.token)))),
            None => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "RAYKIT_ADDRESS=auto joins the cluster recorded on this host, but {} records \
                     none: start one with `raykit start --head`, or give the head's HOST:PORT",
                    home().display()
                ),
            )),
        };
    }
    let token = env_token.or_else(|| {
        recorded
            .filter(|r| same_address(&r.address, address))
            .map(|r| r.token)
    });
    Ok((address.to_owned(), token))
}

/// Whether two `HOST:PORT` texts name the same socket address (by text, or resolved).
pub fn same_address(a: &str, b: &str) -> bool {
    use std::net::ToSocketAddrs;
    if a.trim() == b.trim() {
        return true;
    }
    let resolve = |s: &str| -> Vec<std::net::SocketAddr> {
        s.trim()
            .to_socket_addrs()
            .map(|it| it.collect())
            .unwrap_or_default()
    };
    let b = resolve(b);
    resolve(a).iter().any(|x| b.contains(x))
}
