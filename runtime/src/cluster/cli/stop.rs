//! `raykit stop`: stops the daemons recorded on this host, nodes before the head, asking each
//! over an authenticated connection and terminating the ones that do not go.

use std::process::ExitCode;
use std::time::Duration;

use super::client_runtime;
use crate::cluster::proto::{Connection, Message, Role, HANDSHAKE_TIMEOUT};
use crate::cluster::records::{self, DaemonRecord};
use crate::error::{Error, ErrorKind, Result};

/// How long `raykit stop` waits for a daemon to exit after asking it to.
const STOP_GRACE: Duration = Duration::from_secs(5);

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

pub(super) fn stop() -> Result<ExitCode> {
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
