//! The cluster mode (`--address HOST:PORT`): the same workloads against a running cluster,
//! each next to what loopback TCP on this machine allows, and one metric of its own, a 256 MiB
//! object moved from one node to another.
//!
//! The limits: a metric that waits for each call before the next (`*_sync`) is compared with
//! one-byte TCP round trips, one at a time; a pipelined one with 64-byte messages kept in flight
//! (what a batched submission could reach); a bandwidth metric with streaming 4 MiB writes over
//! one connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use raykit::{ActorHandle, ObjectRef};
use serde_bytes::ByteBuf;

use crate::harness::{timeit, Rate};
use crate::suite::{Metric, Unit};
use crate::workloads::Outcome;

/// Bytes of the object of `transfer_256mib_between_nodes`.
const TRANSFER_LEN: usize = 256 << 20;

/// What a cluster metric is compared with, and how it is measured.
pub fn limit_for(m: &Metric) -> (&'static str, fn(Duration) -> Rate) {
    if m.unit == Unit::GigabytesPerSecond {
        (
            "loopback TCP bandwidth, 4 MiB writes on one connection",
            bandwidth,
        )
    } else if m.name.ends_with("_sync") {
        (
            "loopback TCP round trips of 1 byte, one at a time",
            round_trips,
        )
    } else {
        ("loopback TCP 64-byte messages, 1,000 in flight", pipelined)
    }
}

/// Metrics only the cluster mode has.
pub const CLUSTER_METRICS: &[Metric] = &[Metric::new(
    "transfer_256mib_between_nodes",
    "(raykit only) 256 MiB object from one node to another",
    Unit::GigabytesPerSecond,
    "loopback TCP bandwidth, 4 MiB writes on one connection",
    transfer_256mib_between_nodes,
    |c| bandwidth(c.duration),
)];

/// One-byte round trips per second over loopback TCP.
pub fn round_trips(d: Duration) -> Rate {
    echo_pair(|client| {
        timeit(d, 1.0, || {
            let mut b = [7u8];
            client.write_all(&b)?;
            client.read_exact(&mut b)
        })
    })
}

/// 64-byte messages per second over loopback TCP, 1,000 written before the replies are read.
pub fn pipelined(d: Duration) -> Rate {
    echo_pair(|client| {
        let batch = vec![7u8; 64 * 1000];
        let mut back = vec![0u8; batch.len()];
        timeit(d, 1000.0, || {
            // The echo thread answers while this one writes; a write this size fits the
            // socket buffers of both ends, so neither side blocks the other for good.
            client.write_all(&batch)?;
            client.read_exact(&mut back)
        })
    })
}

/// A connected pair on 127.0.0.1: `client` talks to a thread that echoes what it reads.
fn echo_pair(client: impl FnOnce(&mut TcpStream) -> std::io::Result<Rate>) -> Rate {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("local address");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            s.write_all(&buf[..n])?;
        }
    });
    let mut c = TcpStream::connect(address).expect("connect to 127.0.0.1");
    c.set_nodelay(true).expect("TCP_NODELAY");
    let rate = client(&mut c).expect("loopback TCP");
    drop(c);
    let _ = echo.join();
    rate
}

/// "GB" per second (Ray's unit: 10^9 bytes) streamed over one loopback TCP connection.
pub fn bandwidth(d: Duration) -> Rate {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("local address");
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 4 << 20];
        while s.read(&mut buf)? > 0 {}
        Ok::<_, std::io::Error>(())
    });
    let mut c = TcpStream::connect(address).expect("connect to 127.0.0.1");
    let chunk = vec![1u8; 4 << 20];
    let rate = timeit(d, chunk.len() as f64 / 1e9, || c.write_all(&chunk)).expect("loopback TCP");
    drop(c);
    let _ = sink.join();
    rate
}

/// Holds a value on one node and hands it out, or takes one in.
#[derive(raykit::Actor)]
pub struct Holder {}

#[raykit::actor]
impl Holder {
    /// A new holder.
    pub fn new() -> Self {
        Holder {}
    }

    /// The node the holder lives on.
    pub fn node(&self) -> String {
        raykit::node_id().to_string()
    }

    /// A `len`-byte value, made here (so it is stored on this node). Bytes as a user would
    /// send them in bulk: `serde_bytes` encodes them as one length and a copy, not element by
    /// element as a `Vec<u8>`.
    pub fn make(&self, len: usize) -> ByteBuf {
        ByteBuf::from(vec![3u8; len])
    }

    /// The length of a value fetched to this node.
    pub fn take(&self, value: ByteBuf) -> usize {
        value.len()
    }
}

/// A 256 MiB value made on one node and passed to an actor on another: each round moves it
/// once, node to node. The two actors land on different nodes because a cluster places each
/// new actor on the node hosting the fewest.
fn transfer_256mib_between_nodes(c: &crate::suite::Ctx) -> Outcome {
    let maker = Holder::remote();
    let taker = Holder::remote();
    let (a, b) = (raykit::get(&maker.node())?, raykit::get(&taker.node())?);
    if a == b {
        return Err(raykit::Error::new(
            raykit::ErrorKind::Config,
            format!("both actors landed on {a}: this metric needs a cluster of two nodes or more"),
        ));
    }
    let value: ObjectRef<ByteBuf> = maker.make(TRANSFER_LEN);
    raykit::wait(std::slice::from_ref(&value), 1, None);
    move_value(c.duration, &taker, &value)
}

fn move_value(d: Duration, taker: &ActorHandle<Holder>, value: &ObjectRef<ByteBuf>) -> Outcome {
    // Each call fetches the value again: a node does not keep the values it fetched.
    timeit(
        d.max(Duration::from_secs(5)),
        TRANSFER_LEN as f64 / 1e9,
        || match raykit::get(&taker.take(value))? {
            TRANSFER_LEN => Ok(()),
            n => Err(raykit::Error::new(
                raykit::ErrorKind::System,
                format!("the taker got {n} bytes of {TRANSFER_LEN}"),
            )),
        },
    )
}
