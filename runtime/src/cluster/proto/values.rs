//! How values travel inside messages: byte vectors as postcard bytes, objects and their
//! pieces encoded without copying the value first, the assembly of pieces into one buffer, and
//! the messages whose value lists are sent in pieces ahead of them.

use super::*;

/// Byte vectors on the wire as postcard "bytes" (a length, then the bytes, copied at once)
/// instead of a sequence of `u8` (one call per byte). postcard writes both the same way, so
/// this changes speed, not the encoding.
pub(super) mod byte_serde {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::error::Error;

    /// A borrowed byte slice that serializes as bytes.
    pub(super) struct Ref<'a>(pub(super) &'a [u8]);

    impl Serialize for Ref<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    /// An owned byte vector that deserializes from bytes (or a sequence of `u8`).
    pub(super) struct Buf(pub(super) Vec<u8>);

    impl<'de> Deserialize<'de> for Buf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Buf;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Buf, E> {
                    Ok(Buf(v.to_vec()))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Buf, E> {
                    Ok(Buf(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Buf, A::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                    while let Some(b) = seq.next_element::<u8>()? {
                        out.push(b);
                    }
                    Ok(Buf(out))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    pub(in crate::cluster::proto) mod bytes {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            Buf::deserialize(d).map(|b| b.0)
        }
    }

    pub(in crate::cluster::proto) mod opt_bytes {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            v: &Option<Vec<u8>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            v.as_deref().map(Ref).serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<u8>>, D::Error> {
            Option::<Buf>::deserialize(d).map(|b| b.map(|b| b.0))
        }
    }

    pub(in crate::cluster::proto) mod bytes_list {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|b| Ref(b)))
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Vec<u8>>, D::Error> {
            Vec::<Buf>::deserialize(d).map(|v| v.into_iter().map(|b| b.0).collect())
        }
    }

    pub(in crate::cluster::proto) mod bytes_list_result {
        use super::*;

        /// `Result`'s own shape: variant `Ok` then `Err`.
        #[derive(Serialize)]
        enum AsRef<'a> {
            Ok(#[serde(with = "super::bytes_list")] &'a [Vec<u8>]),
            Err(&'a Error),
        }

        #[derive(Deserialize)]
        enum Owned {
            Ok(#[serde(with = "super::bytes_list")] Vec<Vec<u8>>),
            Err(Error),
        }

        pub(crate) fn serialize<S: Serializer>(
            v: &Result<Vec<Vec<u8>>, Error>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Ok(list) => AsRef::Ok(list),
                Err(e) => AsRef::Err(e),
            }
            .serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Result<Vec<Vec<u8>>, Error>, D::Error> {
            Ok(match Owned::deserialize(d)? {
                Owned::Ok(list) => Ok(list),
                Owned::Err(e) => Err(e),
            })
        }
    }
}

/// The encoding of [`Message::ObjectData`] built from a borrowed value, so that sending a large
/// object does not first copy it into a message. Decodes as the message would.
pub fn encode_object_data(id: ObjectId, bytes: &[u8]) -> Result<Vec<u8>> {
    // The message with an empty value ends in the value's length, a one-byte varint 0: keep
    // what precedes it, then write the real length and the bytes.
    let mut out = Message::ObjectData {
        id,
        bytes: Vec::new(),
    }
    .encode()?;
    out.pop();
    out.reserve(bytes.len() + 10);
    let mut len = bytes.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
    Ok(out)
}

/// The encoding of [`Message::ObjectChunk`] built from a borrowed piece of a stored value, so
/// that sending a large object copies each piece once, never the whole value.
pub fn encode_object_chunk(id: ObjectId, offset: u64, total: u64, piece: &[u8]) -> Result<Vec<u8>> {
    let mut out = object_chunk_header(id, offset, total, piece.len())?;
    out.extend_from_slice(piece);
    Ok(out)
}

/// What comes before the piece in the encoding of [`Message::ObjectChunk`]: the variant, the
/// fields, and the piece's length.
pub(super) fn object_chunk_header(
    id: ObjectId,
    offset: u64,
    total: u64,
    piece: usize,
) -> Result<Vec<u8>> {
    // As in `encode_object_data`: the message with an empty piece ends in its length, a
    // one-byte varint 0.
    let mut out = Message::ObjectChunk {
        id,
        offset,
        total,
        bytes: Vec::new(),
    }
    .encode()?;
    out.pop();
    push_varint(&mut out, piece as u64);
    Ok(out)
}

/// A [`Message::ObjectChunk`] read in place from its frame: the piece borrows the frame
/// instead of being copied out of it.
#[derive(Debug, Deserialize)]
pub(super) struct ChunkView<'a> {
    pub(super) id: ObjectId,
    pub(super) offset: u64,
    pub(super) total: u64,
    #[serde(borrow)]
    pub(super) bytes: &'a [u8],
}

/// The variant tag that starts an encoded [`Message::ObjectChunk`].
fn object_chunk_tag() -> Option<u32> {
    static TAG: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| {
        let probe = object_chunk_header(ObjectId::next(), 0, 0, 0).ok()?;
        postcard::take_from_bytes::<u32>(&probe)
            .ok()
            .map(|(t, _)| t)
    })
}

impl<'a> ChunkView<'a> {
    /// The chunk in `frame`, `None` when the frame holds another message (or a malformed
    /// one: decoding it as a message then says what is wrong).
    pub(super) fn parse(frame: &'a [u8]) -> Option<ChunkView<'a>> {
        let (got, rest) = postcard::take_from_bytes::<u32>(frame).ok()?;
        if got != object_chunk_tag()? {
            return None;
        }
        postcard::from_bytes(rest).ok()
    }
}

/// The most bytes the fields of a [`Message::ObjectChunk`] take before its piece: the tag, the
/// id, the offset, the total and the piece's length, each a varint.
pub(super) const CHUNK_HEADER_MAX: usize = 5 + 19 + 3 * 10;

/// The fields of a [`Message::ObjectChunk`] read from the start of its frame, before its piece
/// arrives, so that the piece can be read from the stream straight to where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PieceHeader {
    pub(super) id: ObjectId,
    pub(super) offset: u64,
    pub(super) total: u64,
    /// The piece's length.
    pub(super) len: u64,
    /// How many bytes of the frame come before the piece.
    pub(super) header_len: usize,
}

/// What the first bytes of a frame say.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FrameStart {
    /// An object chunk's header.
    Piece(PieceHeader),
    /// Not enough bytes yet to tell.
    NeedMore,
    /// Another message (or a malformed one).
    Other,
}

impl PieceHeader {
    /// Reads the header of an object chunk from `start`, the first bytes of a frame.
    pub(super) fn parse(start: &[u8]) -> FrameStart {
        let unexpected_end = |e: &postcard::Error| *e == postcard::Error::DeserializeUnexpectedEnd;
        let rest = match postcard::take_from_bytes::<u32>(start) {
            Ok((tag, rest)) if Some(tag) == object_chunk_tag() => rest,
            Ok(_) => return FrameStart::Other,
            Err(e) if unexpected_end(&e) => return FrameStart::NeedMore,
            Err(_) => return FrameStart::Other,
        };
        // A byte slice is encoded as its length (a varint, as a u64 is) and the bytes.
        match postcard::take_from_bytes::<(ObjectId, u64, u64, u64)>(rest) {
            Ok(((id, offset, total, len), piece)) => FrameStart::Piece(PieceHeader {
                id,
                offset,
                total,
                len,
                header_len: start.len() - piece.len(),
            }),
            Err(e) if unexpected_end(&e) => FrameStart::NeedMore,
            Err(_) => FrameStart::Other,
        }
    }
}

pub(super) fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Assembles a value that arrives in [`Message::ObjectChunk`]s into one buffer, sized once
/// from the first piece's `total`.
#[derive(Debug)]
pub struct ChunkAssembler {
    id: ObjectId,
    total: u64,
    buf: Vec<u8>,
}

impl ChunkAssembler {
    /// Starts assembling object `id` of `total` bytes (the first piece's header).
    pub fn new(id: ObjectId, total: u64) -> Result<ChunkAssembler> {
        let buf = presized(total, &format_args!("object {id}"))?;
        Ok(ChunkAssembler { id, total, buf })
    }

    /// Adds the next piece; returns the whole value after the last one.
    pub fn add(&mut self, id: ObjectId, offset: u64, total: u64, piece: &[u8]) -> Result<bool> {
        if id != self.id || total != self.total || offset != self.buf.len() as u64 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "piece of object {id} at offset {offset} (of {total}) out of order: expected                      object {} at {} (of {})",
                    self.id,
                    self.buf.len(),
                    self.total
                ),
            ));
        }
        if (self.buf.len() + piece.len()) as u64 > self.total {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("object {id} overflows its {total} bytes"),
            ));
        }
        self.buf.extend_from_slice(piece);
        Ok(self.buf.len() as u64 == self.total)
    }

    /// The object being assembled.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The assembled value.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// The largest object accepted in pieces.
pub const MAX_OBJECT: usize = 1 << 40;

/// An empty buffer with room for a value of `total` bytes that arrives in pieces; `what` names
/// the value in errors.
fn presized(total: u64, what: &dyn fmt::Display) -> Result<Vec<u8>> {
    let size = usize::try_from(total)
        .ok()
        .filter(|t| *t <= MAX_OBJECT)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("{what} of {total} bytes is larger than the {MAX_OBJECT}-byte limit"),
            )
        })?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(size).map_err(|e| {
        Error::new(
            ErrorKind::System,
            format!("cannot allocate {total} bytes for {what}: {e}"),
        )
    })?;
    Ok(buf)
}

/// Where the value list of a message that carries task values sits, for
/// [`FrameWriter::feed_with_values`] and [`FrameReader::recv_values`].
pub(super) struct ValueSlots {
    /// The task id its [`Message::ValueChunk`]s carry.
    pub(super) task_id: TaskId,
    /// Whether the values are arguments, which the worker only concatenates: large ones then
    /// travel as one value.
    pub(super) arguments: bool,
    /// How many encoded bytes follow the list in the message.
    pub(super) tail: usize,
}

impl ValueSlots {
    /// The slots of `msg`, if it is a message that carries task values.
    pub(super) fn of(msg: &Message) -> Option<(ValueSlots, &Vec<Vec<u8>>)> {
        let (task_id, arguments, tail, list) = match msg {
            Message::RunTask { task_id, args, .. }
            | Message::RunActorCall { task_id, args, .. } => (*task_id, true, 0, args),
            Message::HostActor {
                args,
                max_concurrency,
                ..
            } => (
                TaskId(0),
                true,
                varint_len(u64::from(*max_concurrency)),
                args,
            ),
            Message::TaskResult {
                task_id,
                result: Ok(outputs),
            } => (*task_id, false, 0, outputs),
            _ => return None,
        };
        Some((
            ValueSlots {
                task_id,
                arguments,
                tail,
            },
            list,
        ))
    }

    /// The value list of `msg`, to fill (the message [`ValueSlots::of`] described).
    pub(super) fn list_mut(msg: &mut Message) -> Option<&mut Vec<Vec<u8>>> {
        match msg {
            Message::RunTask { args, .. }
            | Message::RunActorCall { args, .. }
            | Message::HostActor { args, .. } => Some(args),
            Message::TaskResult {
                result: Ok(outputs),
                ..
            } => Some(outputs),
            _ => None,
        }
    }
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// The encoding of `shell` (a message of [`ValueSlots`] with an empty list) with the list
/// `values`, built from borrowed slices so that no value is copied into a message first.
/// `bytes` is their total size. Decodes as the message holding the values would.
pub(super) fn encode_with_values<'a>(
    shell: &Message,
    slots: &ValueSlots,
    values: impl ExactSizeIterator<Item = &'a [u8]>,
    bytes: usize,
) -> Result<Vec<u8>> {
    // The empty list is a one-byte varint 0 right before the fields that follow it: keep
    // what precedes it, write the real list, then those fields.
    let mut out = shell.encode()?;
    let at = out
        .len()
        .checked_sub(slots.tail + 1)
        .filter(|at| out.get(*at) == Some(&0))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::System,
                format!(
                    "a {} message to fill with values is not empty",
                    shell.name()
                ),
            )
        })?;
    let tail = out.split_off(at + 1);
    out.pop();
    out.reserve(bytes + 10 * (values.len() + 1) + tail.len());
    push_varint(&mut out, values.len() as u64);
    for v in values {
        push_varint(&mut out, v.len() as u64);
        out.extend_from_slice(v);
    }
    out.extend_from_slice(&tail);
    Ok(out)
}

/// The pieces of the values of the next message on a connection, as they arrive.
#[derive(Debug)]
pub(super) struct ValuePieces {
    task_id: TaskId,
    /// The values complete so far, by increasing slot.
    done: Vec<(u32, Vec<u8>)>,
    /// The value being assembled: its slot, its size and its bytes so far.
    current: Option<(u32, u64, Vec<u8>)>,
}

impl ValuePieces {
    /// Adds one [`Message::ValueChunk`] to the pieces in `pending` (starting them on the first).
    pub(super) fn add(
        pending: &mut Option<ValuePieces>,
        task_id: TaskId,
        index: u32,
        offset: u64,
        total: u64,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let p = pending.get_or_insert_with(|| ValuePieces {
            task_id,
            done: Vec::new(),
            current: None,
        });
        let protocol = |m: String| Err(Error::new(ErrorKind::Protocol, m));
        if task_id != p.task_id {
            return protocol(format!(
                "a piece of task {task_id}'s values came among those of task {}",
                p.task_id
            ));
        }
        let (slot, buf) = match p.current.take() {
            None => {
                if offset != 0 {
                    return protocol(format!(
                        "value #{index} of task {task_id} began at offset {offset}, not 0"
                    ));
                }
                if let Some((last, _)) = p.done.last().filter(|(last, _)| *last >= index) {
                    return protocol(format!(
                        "value #{index} of task {task_id} came after value #{last}"
                    ));
                }
                if bytes.len() as u64 > total {
                    return protocol(format!(
                        "value #{index} of task {task_id} overflows its {total} bytes"
                    ));
                }
                if bytes.len() as u64 == total {
                    // A value in one piece: the piece is the value, no copy.
                    (index, bytes)
                } else {
                    let mut buf =
                        presized(total, &format_args!("value #{index} of task {task_id}"))?;
                    buf.extend_from_slice(&bytes);
                    (index, buf)
                }
            }
            Some((slot, size, mut buf)) => {
                if slot != index || size != total || offset != buf.len() as u64 {
                    return protocol(format!(
                        "piece of value #{index} of task {task_id} at offset {offset} (of {total}) out of order: expected value #{slot} at {} (of {size})",
                        buf.len()
                    ));
                }
                if buf.len() as u64 + bytes.len() as u64 > total {
                    return protocol(format!(
                        "value #{index} of task {task_id} overflows its {total} bytes"
                    ));
                }
                buf.extend_from_slice(&bytes);
                (slot, buf)
            }
        };
        if buf.len() as u64 == total {
            p.done.push((slot, buf));
        } else {
            p.current = Some((slot, total, buf));
        }
        Ok(())
    }

    /// Puts the assembled values into the empty slots of `msg`, the message they came before.
    pub(super) fn fill(self, mut msg: Message) -> Result<Message> {
        let protocol = |m: String| Err(Error::new(ErrorKind::Protocol, m));
        let name = msg.name();
        let task_id = self.task_id;
        if let Some((slot, total, buf)) = &self.current {
            return protocol(format!(
                "a {name} message came before the last piece of value #{slot} of task {task_id} ({} of {total} bytes)",
                buf.len()
            ));
        }
        match ValueSlots::of(&msg) {
            Some((slots, _)) if slots.task_id == task_id => {}
            Some((slots, _)) => {
                return protocol(format!(
                    "the values of task {task_id} came before a {name} message of task {}",
                    slots.task_id
                ))
            }
            None => {
                return protocol(format!(
                    "the values of task {task_id} came before a {name} message, which carries none"
                ))
            }
        }
        let Some(list) = ValueSlots::list_mut(&mut msg) else {
            return protocol(format!("a {name} message carries no values"));
        };
        let len = list.len();
        for (slot, value) in self.done {
            match list.get_mut(slot as usize) {
                Some(empty) if empty.is_empty() => *empty = value,
                Some(_) => {
                    return protocol(format!(
                        "value #{slot} of task {task_id} came both in pieces and in its {name} message"
                    ))
                }
                None => {
                    return protocol(format!(
                        "value #{slot} of task {task_id} came in pieces, but its {name} message has {len} values"
                    ))
                }
            }
        }
        Ok(msg)
    }
}
