//! The encoding of user values: objects, task arguments and returns, actor arguments and
//! returns. The one place that knows the format; protocol messages stay postcard
//! (`cluster::proto`).
//!
//! Postcard is compact and fast (one byte per `u8` of a `Vec<u8>`), but not self-describing: a
//! type whose `Deserialize` asks the format what comes next (`deserialize_any`, as
//! `serde_json::Value`, `#[serde(untagged)]` and internally tagged enums and
//! `#[serde(flatten)]` do) cannot be decoded from it. Which types ask is a property of the
//! type, not of one value (an empty `Vec<Value>` holds no `Value`), so it is found once per
//! type by tracing `T::deserialize` over every branch ([`trace`]) and kept per [`TypeId`].
//! Values of the types that ask, or that the trace cannot vouch for, are encoded as
//! MessagePack with field names (`rmp-serde`), which every serde type can read back; values
//! whose postcard encoding fails (a sequence of unknown length, as `#[serde(flatten)]` writes)
//! fall back to it too.
//!
//! An encoded value starts with one byte saying which ([`Format`]), so a decoder never depends
//! on reaching the encoder's verdict:
//!
//! ```text
//! 0x00 <postcard encoding of the value>
//! 0x01 <varint length n> <n bytes of MessagePack>
//! ```
//!
//! Both forms know where they end, so the arguments of a call travel as the concatenation of
//! their encodings and are read back one by one ([`ArgReader`]).
//!
//! MessagePack, like JSON, writes `None` and a `Some` of a value that is itself nil (`()`,
//! `None`, `Value::Null`) alike: inside a self-describing value, `Some(Value::Null)` and
//! `Some(None)` read back as `None`, as they would through `serde_json`. Postcard values keep
//! the difference.
//!
//! Decoding reads a peer's bytes: it returns an error, never panics, allocates no more than
//! the input justifies, and refuses values nested deeper than [`MAX_DEPTH`] (postcard values of
//! recursive types: [`MAX_POSTCARD_DEPTH`]; see [`bounded`]).

mod bounded;
mod trace;

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// How deeply a self-describing value may nest (every nested serde value counts: a JSON array
/// in an array is two levels), as `serde_json` allows. Deeper input is refused rather than
/// risking the decoding thread's stack (a level takes up to 4 KiB of it unoptimized).
pub(crate) const MAX_DEPTH: u32 = 128;

/// How deeply a postcard value of a recursive type may nest (a cell of a linked list is one
/// level): its levels take less stack.
pub(crate) const MAX_POSTCARD_DEPTH: u32 = 256;

/// The first byte of a postcard-encoded value.
const POSTCARD: u8 = 0;
/// The first byte of a MessagePack-encoded value.
const MSGPACK: u8 = 1;

/// How the values of one type are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Postcard: the type reads itself back without asking the format what comes next.
    Postcard,
    /// MessagePack with field names: the type needs (or may need) a self-describing format.
    SelfDescribing,
}

/// What is known of a type, found once by tracing its `Deserialize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Profile {
    format: Format,
    /// Whether the type contains itself (a tree, a list): only then can postcard input nest
    /// without bound, and only then is postcard decoding counted against [`MAX_DEPTH`].
    recursive: bool,
}

// ---------------------------------------------------------------------------------------------
// Profiles, per type.

/// A hasher for `TypeId`s, which are hashes already.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

type Profiles = HashMap<TypeId, Profile, BuildHasherDefault<IdHasher>>;

/// Every profile found in this process; each thread keeps a copy of what it used, so the
/// usual lookup touches nothing shared.
static PROFILES: RwLock<Profiles> = RwLock::new(HashMap::with_hasher(BuildHasherDefault::new()));

thread_local! {
    static LOCAL: RefCell<Profiles> =
        const { RefCell::new(HashMap::with_hasher(BuildHasherDefault::new())) };
    /// Set while this thread traces a type: deserializers with side effects (refs, actor
    /// handles) then build inert placeholders instead.
    static TRACING: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread encodes or decodes a MessagePack value (see [`Portable`]).
    static SELF_DESCRIBING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with [`SELF_DESCRIBING`] set.
fn self_describing<R>(f: impl FnOnce() -> R) -> R {
    let was = SELF_DESCRIBING.with(|s| s.replace(true));
    let result = f();
    SELF_DESCRIBING.with(|s| s.set(was));
    result
}

/// An id (of an object or an actor: a `u128`) inside a user value, in a form every serde
/// path carries. In MessagePack a `u128` is 16 bytes of `bin`, which serde's buffering of
/// untagged, internally tagged and flattened types reads back as bytes, not as a `u128`: a
/// ref inside such a type could not be decoded. So in MessagePack the id travels as the bytes
/// of its postcard encoding, which every path reads back as bytes; in postcard, as it is.
#[derive(Debug)]
pub(crate) struct Portable<T>(pub(crate) T);

impl<T: Serialize> Serialize for Portable<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if !SELF_DESCRIBING.with(Cell::get) {
            return self.0.serialize(s);
        }
        let bytes = postcard::to_allocvec(&self.0).map_err(serde::ser::Error::custom)?;
        s.serialize_bytes(&bytes)
    }
}

impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for Portable<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        if !SELF_DESCRIBING.with(Cell::get) {
            return T::deserialize(d).map(Portable);
        }
        struct Bytes<T>(std::marker::PhantomData<T>);
        impl<T: DeserializeOwned> serde::de::Visitor<'_> for Bytes<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an id, as bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<T, E> {
                postcard::from_bytes(v).map_err(E::custom)
            }
        }
        d.deserialize_bytes(Bytes(std::marker::PhantomData))
            .map(Portable)
    }
}

/// Whether this thread is tracing a type's `Deserialize` (see [`trace`]): a `Deserialize`
/// impl with side effects must then read its input as usual and return an inert value.
pub(crate) fn tracing() -> bool {
    TRACING.with(Cell::get)
}

/// The format of `T`'s values: found by tracing `T` the first time, then looked up.
pub(crate) fn format_of<T: DeserializeOwned + 'static>() -> Format {
    profile::<T>().format
}

fn profile<T: DeserializeOwned + 'static>() -> Profile {
    let id = TypeId::of::<T>();
    if let Ok(Some(p)) = LOCAL.try_with(|m| m.borrow().get(&id).copied()) {
        return p;
    }
    let known = PROFILES.read().get(&id).copied();
    let p = known.unwrap_or_else(|| {
        let p = find_profile::<T>();
        *PROFILES.write().entry(id).or_insert(p)
    });
    let _ = LOCAL.try_with(|m| m.borrow_mut().insert(id, p));
    p
}

fn find_profile<T: DeserializeOwned + 'static>() -> Profile {
    match trace::trace::<T>() {
        trace::Verdict::Postcard { recursive } => Profile {
            format: Format::Postcard,
            recursive,
        },
        trace::Verdict::SelfDescribing(why) => {
            tracing::debug!(
                "values of `{}` are encoded as MessagePack: {why}",
                std::any::type_name::<T>()
            );
            Profile {
                format: Format::SelfDescribing,
                recursive: true,
            }
        }
    }
}

/// Values of `T` failed to encode with postcard: encode them self-describing from now on.
fn fall_back<T: 'static>() {
    let id = TypeId::of::<T>();
    let p = Profile {
        format: Format::SelfDescribing,
        recursive: true,
    };
    PROFILES.write().insert(id, p);
    let _ = LOCAL.try_with(|m| m.borrow_mut().insert(id, p));
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/// Encodes `value` (see the [module](self) for the form).
pub(crate) fn encode<T: Serialize + DeserializeOwned + 'static>(value: &T) -> Result<Vec<u8>> {
    if format_of::<T>() == Format::Postcard {
        match postcard::serialize_with_flavor(value, Tagged(vec![POSTCARD])) {
            Ok(bytes) => return Ok(bytes),
            Err(postcard::Error::SerializeSeqLengthUnknown) => fall_back::<T>(),
            // Postcard drops the messages of custom errors: MessagePack keeps them (and if it
            // succeeds, its encoding is as good).
            Err(_) => {}
        }
    }
    encode_msgpack(value)
}

fn encode_msgpack<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    // Room for the tag and the longest length, written once the length is known.
    const HEAD: usize = 1 + VARINT_MAX;
    let mut out = vec![0u8; HEAD];
    self_describing(|| rmp_serde::encode::write_named(&mut out, value))
        .map_err(|e| encode_error::<T>(&e))?;
    let mut head = [0u8; HEAD];
    let n = head_of(out.len() - HEAD, &mut head);
    let start = HEAD - n;
    out[start..HEAD].copy_from_slice(&head[..n]);
    out.drain(..start);
    Ok(out)
}

/// The size of a value's encoding, measured before encoding it into a buffer of that size
/// ([`encode_into`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Measured {
    format: Format,
    /// The whole encoding.
    len: usize,
    /// The MessagePack part of a self-describing encoding.
    payload: usize,
}

impl Measured {
    /// The length of the encoding, in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Measures the encoding of `value` without keeping it.
pub(crate) fn measure<T: Serialize + DeserializeOwned + 'static>(value: &T) -> Result<Measured> {
    if format_of::<T>() == Format::Postcard {
        match postcard::experimental::serialized_size(value) {
            Ok(len) => {
                return Ok(Measured {
                    format: Format::Postcard,
                    len: 1 + len,
                    payload: len,
                })
            }
            Err(postcard::Error::SerializeSeqLengthUnknown) => fall_back::<T>(),
            Err(_) => {}
        }
    }
    let mut counter = Counter(0);
    self_describing(|| rmp_serde::encode::write_named(&mut counter, value))
        .map_err(|e| encode_error::<T>(&e))?;
    Ok(Measured {
        format: Format::SelfDescribing,
        len: head_of(counter.0, &mut [0; 1 + VARINT_MAX]) + counter.0,
        payload: counter.0,
    })
}

/// Encodes `value` into `out`, whose length is what [`measure`] said (`measured`); an
/// encoding of another length is an error.
pub(crate) fn encode_into<T: Serialize>(
    value: &T,
    measured: Measured,
    out: &mut [u8],
) -> Result<()> {
    let wrong = |n: usize| {
        Error::new(
            ErrorKind::Serialization,
            format!(
                "a value of type `{}` encoded to {n} bytes after measuring {}",
                std::any::type_name::<T>(),
                measured.len
            ),
        )
    };
    if out.len() != measured.len {
        return Err(wrong(out.len()));
    }
    let (head, mut body) = match measured.format {
        Format::Postcard => out.split_at_mut(1),
        Format::SelfDescribing => out.split_at_mut(measured.len - measured.payload),
    };
    match measured.format {
        Format::Postcard => {
            head[0] = POSTCARD;
            let written = postcard::to_slice(value, body)
                .map_err(|e| encode_error::<T>(&e))?
                .len();
            if written != measured.payload {
                return Err(wrong(1 + written));
            }
        }
        Format::SelfDescribing => {
            let mut bytes = [0u8; 1 + VARINT_MAX];
            let n = head_of(measured.payload, &mut bytes);
            if n != head.len() {
                return Err(wrong(n + measured.payload));
            }
            head.copy_from_slice(&bytes[..n]);
            self_describing(|| rmp_serde::encode::write_named(&mut body, value))
                .map_err(|e| encode_error::<T>(&e))?;
            if !body.is_empty() {
                return Err(wrong(measured.len - body.len()));
            }
        }
    }
    Ok(())
}

fn encode_error<T>(e: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Serialization,
        format!(
            "cannot encode a value of type `{}`: {e} (its `Serialize` failed; a type that \
             serializes as plain data, derived or written by hand, always encodes)",
            std::any::type_name::<T>()
        ),
    )
}

/// A postcard output that starts with the tag byte already in it.
struct Tagged(Vec<u8>);

impl postcard::ser_flavors::Flavor for Tagged {
    type Output = Vec<u8>;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Counts what is written.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The most bytes a varint of a `u64` takes.
const VARINT_MAX: usize = 10;

/// Writes the head of a MessagePack value of `len` bytes (tag, then the length as a varint)
/// into `out`; returns its length.
fn head_of(len: usize, out: &mut [u8; 1 + VARINT_MAX]) -> usize {
    out[0] = MSGPACK;
    let mut n = len as u64;
    let mut i = 1;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out[i] = byte;
            return i + 1;
        }
        out[i] = byte | 0x80;
        i += 1;
    }
}

/// Reads a varint from the front of `input`: the number and the rest.
fn read_varint(input: &[u8]) -> Option<(u64, &[u8])> {
    let mut n = 0u64;
    for (i, &byte) in input.iter().enumerate().take(VARINT_MAX) {
        let bits = u64::from(byte & 0x7f);
        if i == VARINT_MAX - 1 && bits > 1 {
            return None;
        }
        n |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some((n, &input[i + 1..]));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/// Decodes a value encoded by [`encode`] (bytes after the value are ignored).
pub(crate) fn decode<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T> {
    take::<T>(bytes).map(|(value, _)| value)
}

/// Decodes one value from the front of `input`: the value and the bytes after it.
fn take<T: DeserializeOwned + 'static>(input: &[u8]) -> Result<(T, &[u8])> {
    let fail = |why: String| {
        Error::new(
            ErrorKind::Serialization,
            format!(
                "cannot decode a value of type `{}`: {why}",
                std::any::type_name::<T>()
            ),
        )
    };
    match input.split_first() {
        None => Err(fail("no bytes".into())),
        Some((&POSTCARD, body)) => {
            let budget = bounded::Budget::new(MAX_POSTCARD_DEPTH);
            let mut de = postcard::Deserializer::from_bytes(body);
            let value = if profile::<T>().recursive {
                T::deserialize(bounded::Bounded::new(&mut de, &budget))
            } else {
                T::deserialize(&mut de)
            };
            match value.and_then(|v| de.finalize().map(|rest| (v, rest))) {
                Ok(done) => Ok(done),
                Err(_) if budget.exceeded() => Err(fail(too_deep(MAX_POSTCARD_DEPTH))),
                Err(postcard::Error::WontImplement) => Err(fail(
                    "its `Deserialize` asked postcard for what only a self-describing format \
                     can answer, on a path that tracing the type did not reach; please report \
                     it, and meanwhile pass such values as a `String` or `Vec<u8>` of your own \
                     encoding (serde_json, say)"
                        .into(),
                )),
                Err(e) => Err(fail(format!("{e}"))),
            }
        }
        Some((&MSGPACK, rest)) => {
            let (len, rest) = read_varint(rest).ok_or_else(|| fail("a malformed length".into()))?;
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > rest.len() {
                return Err(fail(format!(
                    "{len} bytes announced, {} present",
                    rest.len()
                )));
            }
            let (payload, rest) = rest.split_at(len);
            let budget = bounded::Budget::new(MAX_DEPTH);
            let mut de = rmp_serde::Deserializer::from_read_ref(payload);
            de.set_max_depth(MAX_DEPTH as usize + 1);
            match self_describing(|| T::deserialize(bounded::Bounded::new(&mut de, &budget))) {
                Ok(value) => Ok((value, rest)),
                Err(_) if budget.exceeded() => Err(fail(too_deep(MAX_DEPTH))),
                Err(e) => Err(fail(format!("{e} (MessagePack)"))),
            }
        }
        Some((tag, _)) => Err(fail(format!("unknown format {tag:#04x}"))),
    }
}

fn too_deep(limit: u32) -> String {
    format!("it nests deeper than {limit} levels, more than raykit decodes")
}

/// Reads the arguments of a call, one value after another, from their concatenated
/// encodings; errors name the call and the argument.
#[doc(hidden)]
#[derive(Debug)]
pub struct ArgReader<'a> {
    what: &'a str,
    rest: &'a [u8],
}

impl<'a> ArgReader<'a> {
    /// Reads the arguments of `what` (a function or method name) from `bytes`.
    pub fn new(what: &'a str, bytes: &'a [u8]) -> Self {
        ArgReader { what, rest: bytes }
    }

    /// Reads the arguments of `what` from `bytes` with `read`, which calls [`next`](Self::next)
    /// once per argument.
    pub fn read<T>(
        what: &'a str,
        bytes: &'a [u8],
        read: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        read(&mut ArgReader::new(what, bytes))
    }

    /// The next argument, `param`.
    pub fn next<T: DeserializeOwned + 'static>(&mut self, param: &str) -> Result<T> {
        let (value, rest) = take::<T>(self.rest).map_err(|e| {
            Error::new(
                ErrorKind::Serialization,
                format!("`{}`, argument `{param}`: {}", self.what, e.message()),
            )
        })?;
        self.rest = rest;
        Ok(value)
    }
}

/// Copies `value` by encoding and decoding it: for stored values whose type is not `Clone`.
pub(crate) fn copy<T: Serialize + DeserializeOwned + 'static>(value: &T) -> Result<T> {
    decode(&encode(value)?)
}

#[cfg(test)]
mod tests;
