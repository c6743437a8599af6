//! What the fuzz targets and the seed writer share: ids built from numbers, the codec's framing,
//! the control byte of the stream targets, and the checks every decoded value must pass.
//!
//! Every target feeds arbitrary bytes to a production decoder of a peer's bytes and asserts
//! that it answers `Ok` or `Err` (libFuzzer catches panics, stack overflows, timeouts and
//! memory past its limits); a value that decodes must encode again and decode to the same
//! encoding.

use raykit::cluster::proto::{encode_object_chunk, encode_object_data, Handshake, Message};
use raykit::{ActorId, Error, ErrorKind, NodeId, ObjectId};

pub use raykit::__fuzz;

/// The object every `fetch_object` input is the answer for.
pub const FETCHED: u128 = (0x5eed << 64) | 1;

/// The cluster token of the handshake targets (no input can know the nonces, so none proves
/// it).
pub const TOKEN: &str = "fuzz-token-0123456789abcdef";

/// The id of the object `n` (ids have no public constructor; their serde form is the number).
pub fn object_id(n: u128) -> ObjectId {
    from_number(&n)
}

/// The id of the actor `n`.
pub fn actor_id(n: u128) -> ActorId {
    from_number(&n)
}

/// The id of the node `n`.
pub fn node_id(n: u64) -> NodeId {
    from_number(&n)
}

fn from_number<T: serde::de::DeserializeOwned>(n: &impl serde::Serialize) -> T {
    let bytes = postcard::to_allocvec(n).expect("a number encodes");
    postcard::from_bytes(&bytes).expect("an id decodes from its number")
}

/// `payload` framed as the connection's codec frames it: a 4-byte big-endian length first.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a frame under 4 GiB");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// How many bytes each read of a stream target hands out for the control value `n`: all that
/// is left for 0, else `n` (so short reads split frames and headers as a socket may).
pub fn read_size(n: u8) -> usize {
    match n {
        0 => usize::MAX,
        n => usize::from(n),
    }
}

/// Checks a message decoded from a peer's bytes: it encodes, its encoding decodes to a message
/// of the same encoding, and the encoders that build object frames from borrowed bytes agree
/// with it.
pub fn check_message(msg: &Message) {
    let once = msg.encode().expect("a decoded message encodes");
    let again = Message::decode(&once).expect("the encoding of a decoded message decodes");
    assert_eq!(
        again.encode().expect("it encodes again"),
        once,
        "a {} message does not round-trip",
        msg.name()
    );
    match msg {
        Message::ObjectData { id, bytes } => {
            assert_eq!(encode_object_data(*id, bytes).expect("encodes"), once);
        }
        Message::ObjectChunk {
            id,
            offset,
            total,
            bytes,
        } => {
            assert_eq!(
                encode_object_chunk(*id, *offset, *total, bytes).expect("encodes"),
                once
            );
        }
        _ => {}
    }
}

/// Checks a handshake frame decoded from a peer's `payload`: it round-trips, its encoding is no
/// longer than what it was decoded from, and a hello's version is what the version check read.
pub fn check_handshake(frame: &Handshake, payload: &[u8]) {
    let bytes = frame.encode().expect("a decoded handshake frame encodes");
    assert!(bytes.len() <= payload.len(), "re-encoding grew the frame");
    assert_eq!(
        &Handshake::decode(&bytes).expect("its encoding decodes"),
        frame
    );
    if let Handshake::Hello { version, .. } = frame {
        assert_eq!(
            raykit::cluster::proto::handshake::hello_prefix(payload),
            Some((0, Some(*version)))
        );
    }
}

/// The links of an error chain, outermost first.
pub fn links(e: &Error) -> Vec<(ErrorKind, String)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(link) = next {
        out.push((link.kind(), link.message().to_owned()));
        next = std::error::Error::source(link).and_then(|s| s.downcast_ref::<Error>());
    }
    out
}

/// The most links and the longest message an error decoded from the wire may have.
const WIRE_CHAIN: usize = 16;
const WIRE_MESSAGE: usize = 64 * 1024;

/// Checks an error decoded from a peer's bytes: within the wire's bounds, and it crosses the
/// wire again unchanged.
pub fn check_error(e: &Error) {
    let chain = links(e);
    assert!(
        (1..=WIRE_CHAIN).contains(&chain.len()),
        "{} links",
        chain.len()
    );
    assert!(chain.iter().all(|(_, m)| m.len() <= WIRE_MESSAGE));
    let bytes = postcard::to_allocvec(e).expect("a decoded error encodes");
    let back: Error = postcard::from_bytes(&bytes).expect("its encoding decodes");
    assert_eq!(links(&back), chain);
}

/// Splits `written` into the payloads of its frames (what a connection under test wrote).
pub fn frames(mut written: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some(prefix) = written.get(..4) {
        let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
        let Some(payload) = written.get(4..4 + len) else {
            panic!("a frame cut short in what the connection wrote");
        };
        out.push(payload);
        written = &written[4 + len..];
    }
    assert!(written.is_empty(), "bytes after the last frame");
    out
}

/// The user types the `user_value` target decodes, picked by its first byte: each shape the
/// value codec treats differently (postcard, postcard of a recursive type, MessagePack of a
/// `serde_json::Value`, of untagged, internally tagged and flattened types, of a recursive
/// enum around a `Value`).
pub mod values {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    /// A plain struct: postcard.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    pub struct Plain {
        /// A number.
        pub id: u64,
        /// A string.
        pub name: String,
        /// Bytes.
        pub data: Vec<u8>,
        /// An optional pair.
        pub pair: Option<(i32, f64)>,
        /// A map.
        pub map: BTreeMap<String, u32>,
    }

    /// A recursive enum: postcard, counted against the nesting limit.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    pub enum List {
        /// A cell.
        Cons(u8, Box<List>),
        /// The end.
        Nil,
    }

    /// An untagged enum: MessagePack.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    pub enum Loose {
        /// A number.
        Number(i64),
        /// A string.
        Text(String),
        /// A struct.
        Pair {
            /// Left.
            left: u8,
            /// Right.
            right: Vec<String>,
        },
    }

    /// An internally tagged enum: MessagePack.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "t")]
    pub enum Event {
        /// A start.
        Start {
            /// When.
            at: u64,
        },
        /// A stop.
        Stop {
            /// Why.
            reason: String,
        },
        /// Nothing.
        Ping,
    }

    /// A struct with flattened fields: MessagePack.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    pub struct Record {
        /// A field of its own.
        pub kind: String,
        /// Flattened.
        #[serde(flatten)]
        pub rest: BTreeMap<String, Value>,
    }

    /// A recursive enum around a `Value`: MessagePack, whose enums nest without the decoder's
    /// own depth count.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    pub enum Tree {
        /// A leaf.
        Leaf(Value),
        /// A node.
        Node(Vec<Tree>),
    }

    /// A tuple of what a call's arguments often are.
    pub type Mixed = (String, Option<Vec<Value>>, u128, [u8; 4]);
}

/// How many types [`check_value`] picks from.
pub const VALUE_TYPES: u8 = 9;

/// Decodes `bytes` as a user value of the type `selector` picks (modulo [`VALUE_TYPES`]): a
/// value that decodes must encode again, and that encoding must decode to a value of the same
/// encoding.
pub fn check_value(selector: u8, bytes: &[u8]) {
    use values::*;
    match selector % VALUE_TYPES {
        0 => round_trip::<serde_json::Value>(bytes),
        1 => round_trip::<Vec<u8>>(bytes),
        2 => round_trip::<Plain>(bytes),
        3 => round_trip::<List>(bytes),
        4 => round_trip::<Loose>(bytes),
        5 => round_trip::<Event>(bytes),
        6 => round_trip::<Record>(bytes),
        7 => round_trip::<Tree>(bytes),
        _ => round_trip::<Mixed>(bytes),
    }
}

fn round_trip<T>(bytes: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let Ok(value) = __fuzz::decode_value::<T>(bytes) else {
        return;
    };
    let once = __fuzz::encode_value(&value).expect("a decoded value encodes");
    let again: T = __fuzz::decode_value(&once).expect("the encoding of a decoded value decodes");
    assert_eq!(
        __fuzz::encode_value(&again).expect("it encodes again"),
        once,
        "a {} does not round-trip",
        std::any::type_name::<T>()
    );
}
