//! Task values in pieces between a node and its workers: the messages whose value lists
//! (arguments, outputs) may not fit their frame ([`ValueSlots`]), their encoding with the list
//! built from borrowed slices, the writer's side that sends the values too large for the frame
//! ahead of their message as [`Message::ValueChunk`]s, and the reader's side that assembles
//! them ([`ValuePieces`]) and puts each in the slot its message left empty.

use super::transfer::{presized, push_varint};
use super::{FrameReader, FrameWriter, Message, TaskId, OBJECT_CHUNK};
use crate::error::{Error, ErrorKind, Result};

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

impl FrameReader {
    /// The next message other than a [`Message::ValueChunk`], with the values that came in
    /// pieces before it in their slots (see [`FrameWriter::feed_with_values`]). Cancel-safe:
    /// the pieces read so far stay with the reader. A piece out of order, or pieces before a
    /// message that has no slot for them, is an error of kind [`ErrorKind::Protocol`] (the
    /// pieces are dropped; the connection is best closed).
    pub async fn recv_values(&mut self) -> Result<Message> {
        loop {
            let msg = match self.recv().await? {
                Message::ValueChunk {
                    task_id,
                    index,
                    offset,
                    total,
                    bytes,
                } => ValuePieces::add(&mut self.pieces, task_id, index, offset, total, bytes)
                    .map(|()| None),
                other => match self.pieces.take() {
                    None => return Ok(other),
                    Some(pieces) => pieces.fill(other).map(Some),
                },
            };
            match msg {
                Ok(Some(msg)) => return Ok(msg),
                Ok(None) => {}
                Err(e) => {
                    self.pieces = None;
                    return Err(Error::new(
                        e.kind(),
                        format!("from {}: {}", self.peer, e.message()),
                    ));
                }
            }
        }
    }
}

impl FrameWriter {
    /// Queues `shell` with the list `values` in its value slots: the arguments of a
    /// [`Message::RunTask`], [`Message::RunActorCall`] or [`Message::HostActor`], or the outputs
    /// of an `Ok` [`Message::TaskResult`], whose list in `shell` is empty. Values that fit one
    /// frame ([`OBJECT_CHUNK`] bytes in all) go in it as they would in the message; the others
    /// go first as [`Message::ValueChunk`]s (arguments as one value, their concatenation), each
    /// piece encoded from slices of `values`, so no value is copied whole. With no `values`,
    /// `shell` goes as it is. The receiver reads it with [`FrameReader::recv_values`].
    pub async fn feed_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: &[V],
    ) -> Result<()> {
        if values.is_empty() {
            return self.feed(shell).await;
        }
        let slots = match ValueSlots::of(shell) {
            Some((slots, list)) if list.is_empty() => slots,
            _ => {
                return Err(Error::new(
                    ErrorKind::System,
                    format!(
                        "a {} message cannot be sent with values (it needs an empty value list)",
                        shell.name()
                    ),
                ))
            }
        };
        let size: usize = values.iter().map(|v| v.as_ref().len()).sum();
        let payload = if size <= OBJECT_CHUNK {
            encode_with_values(shell, &slots, values.iter().map(AsRef::as_ref), size)?
        } else if slots.arguments {
            let parts: Vec<&[u8]> = values.iter().map(AsRef::as_ref).collect();
            self.feed_value_chunks(slots.task_id, 0, &parts, size)
                .await?;
            encode_with_values(shell, &slots, std::iter::once(&[][..]), 0)?
        } else {
            // Outputs are objects of their own: each in the frame while room is left, else in
            // pieces.
            let mut inline = 0usize;
            let mut placed: Vec<&[u8]> = Vec::with_capacity(values.len());
            for (index, v) in values.iter().enumerate() {
                let v = v.as_ref();
                if inline + v.len() <= OBJECT_CHUNK {
                    inline += v.len();
                    placed.push(v);
                    continue;
                }
                let index = u32::try_from(index).map_err(|_| {
                    Error::new(
                        ErrorKind::System,
                        format!("a {} message has too many values", shell.name()),
                    )
                })?;
                self.feed_value_chunks(slots.task_id, index, &[v], v.len())
                    .await?;
                placed.push(&[]);
            }
            encode_with_values(shell, &slots, placed.into_iter(), inline)?
        };
        self.feed_encoded(shell.name(), payload).await
    }

    /// [`feed_with_values`](Self::feed_with_values), then flush.
    pub async fn send_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: &[V],
    ) -> Result<()> {
        self.feed_with_values(shell, values).await?;
        self.flush().await
    }

    /// Queues the value made of `parts` (in order, `total` bytes in all) as the
    /// [`Message::ValueChunk`]s of slot `index`, each piece copied once from the parts.
    async fn feed_value_chunks(
        &mut self,
        task_id: TaskId,
        index: u32,
        parts: &[&[u8]],
        total: usize,
    ) -> Result<()> {
        let mut parts = parts.iter().copied();
        let mut rest: &[u8] = &[];
        let mut offset = 0usize;
        while offset < total {
            let len = (total - offset).min(OBJECT_CHUNK);
            // As in `encode_object_chunk`: the message with an empty piece ends in its
            // length, a one-byte varint 0.
            let mut out = Message::ValueChunk {
                task_id,
                index,
                offset: offset as u64,
                total: total as u64,
                bytes: Vec::new(),
            }
            .encode()?;
            out.pop();
            out.reserve(len + 10);
            push_varint(&mut out, len as u64);
            let mut need = len;
            while need > 0 {
                if rest.is_empty() {
                    match parts.next() {
                        Some(p) => rest = p,
                        None => break,
                    }
                    continue;
                }
                let take = rest.len().min(need);
                out.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                need -= take;
            }
            if need > 0 {
                return Err(Error::new(
                    ErrorKind::System,
                    format!("a value of task {task_id} is shorter than its {total} bytes"),
                ));
            }
            self.feed_encoded("ValueChunk", out).await?;
            offset += len;
        }
        Ok(())
    }
}
