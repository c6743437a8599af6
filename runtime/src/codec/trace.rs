//! Whether postcard can decode every value of a type, found from the type alone.
//!
//! [`trace`] runs `T::deserialize` against a deserializer that has no input and answers every
//! request structurally, as postcard would be asked: a sequence or map of one element, `Some`,
//! each tuple and struct with all its fields, a zero or an empty string for each scalar, and
//! for each enum one variant per run, so that repeated runs visit every variant of every enum
//! the type reaches. A type that asks for `deserialize_any`, `deserialize_identifier` or
//! `deserialize_ignored_any` on any path needs a self-describing format; a type that never
//! does, on every path, decodes from postcard.
//!
//! Recursive types are followed once: where a visitor is entered again inside itself, the
//! inner value is kept minimal (sequences and maps empty, `None`, variants known to finish),
//! since the outer one explores the same structure. A variant that recurses without end is
//! avoided on the next run. Whatever the trace cannot vouch for (a visitor that rejects the
//! answers, a panic, the budget of steps or depth spent) is answered self-describing, which
//! is always correct, only larger.

use std::any::type_name;
use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

/// At most this many runs (one per variant of the type's enums, about).
const MAX_RUNS: usize = 4096;
/// At most this many requests, over all runs.
const MAX_STEPS: usize = 500_000;
/// At most this deep, in requests within requests.
const MAX_DEPTH: usize = 96;

/// What a trace found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Every path of the type is one postcard can decode.
    Postcard {
        /// Whether the type contains itself.
        recursive: bool,
    },
    /// The type needs a self-describing format, or the trace could not tell: why.
    SelfDescribing(String),
}

/// Traces `T`'s `Deserialize` (see the [module](self)).
pub(super) fn trace<T: DeserializeOwned>() -> Verdict {
    let was = super::TRACING.with(|t| t.replace(true));
    let verdict = runs::<T>();
    super::TRACING.with(|t| t.set(was));
    verdict
}

fn runs<T: DeserializeOwned>() -> Verdict {
    let mut t = Tracer::default();
    for _ in 0..MAX_RUNS {
        t.stack.clear();
        t.minimal = false;
        t.open_minimal.clear();
        t.run_choices.clear();
        let run = std::panic::catch_unwind(AssertUnwindSafe(|| T::deserialize(&mut t).map(drop)));
        match (t.stop.take(), run) {
            (Some(Stop::Asked(method)), _) => {
                return Verdict::SelfDescribing(format!("its `Deserialize` calls `{method}`"))
            }
            (Some(Stop::Diverged), _) => t.undo_run(),
            (Some(Stop::Steps), _) => {
                return Verdict::SelfDescribing("the type is too large to trace".into())
            }
            (Some(Stop::Depth), _) => {
                return Verdict::SelfDescribing("the type nests too deeply to trace".into())
            }
            (None, Err(_)) => {
                return Verdict::SelfDescribing("its `Deserialize` panicked when traced".into())
            }
            (None, Ok(Err(e))) if t.flavor == 0 => {
                // Perhaps it rejects zeros and empty strings: try ones.
                tracing::trace!("tracing {} again: {e}", type_name::<T>());
                t.flavor = 1;
                t.undo_run();
            }
            (None, Ok(Err(e))) => {
                return Verdict::SelfDescribing(format!(
                    "its `Deserialize` rejected the values it was traced with ({e})"
                ))
            }
            (None, Ok(Ok(()))) if t.all_explored() => {
                return Verdict::Postcard {
                    recursive: t.recursive,
                }
            }
            (None, Ok(Ok(()))) => {}
        }
    }
    Verdict::SelfDescribing("the type has too many variants to trace".into())
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The type asked for what postcard cannot answer.
    Asked(&'static str),
    /// A recursive variant chosen to end the recursion did not: it is marked; run again.
    Diverged,
    /// The budget of steps is spent.
    Steps,
    /// Too deep, with no recursion to blame.
    Depth,
}

/// What the trace knows of one enum (by its visitor's type).
#[derive(Debug)]
struct Variants {
    /// Chosen in full (not minimal) mode in a run that finished, or in this run.
    explored: Vec<bool>,
    /// Deserialized to the end at least once.
    completed: Vec<bool>,
    /// Recursed without end when chosen to end a recursion.
    diverged: Vec<bool>,
    /// Met in full mode: its variants are to be explored.
    seen_full: bool,
}

impl Variants {
    fn new(n: usize) -> Self {
        Variants {
            explored: vec![false; n],
            completed: vec![false; n],
            diverged: vec![false; n],
            seen_full: false,
        }
    }
}

#[derive(Debug, Default)]
struct Tracer {
    /// The visitors of the requests in progress, outermost first.
    stack: Vec<&'static str>,
    /// Inside a value whose visitor is already on the stack (or a repeated sibling): answer
    /// so that it ends soon.
    minimal: bool,
    /// Requests answered so far, over all runs.
    steps: usize,
    /// Which scalar values are answered: 0 (zeros, empty strings) or 1 (ones, "0").
    flavor: u8,
    enums: HashMap<&'static str, Variants>,
    /// The full-mode choices of this run, undone when the run is repeated.
    run_choices: Vec<(&'static str, usize)>,
    /// The minimal-mode choices in progress, innermost last.
    open_minimal: Vec<(&'static str, usize)>,
    stop: Option<Stop>,
    recursive: bool,
}

impl Tracer {
    fn undo_run(&mut self) {
        for (key, i) in self.run_choices.drain(..) {
            if let Some(v) = self.enums.get_mut(key) {
                v.explored[i] = false;
            }
        }
    }

    fn all_explored(&self) -> bool {
        self.enums
            .values()
            .all(|v| !v.seen_full || v.explored.iter().all(|e| *e))
    }

    fn halt(&mut self, stop: Stop) -> Error {
        self.stop.get_or_insert(stop);
        Error("the trace stopped".into())
    }

    /// Answers one request whose visitor is `visitor`, by `answer`.
    fn enter<R>(
        &mut self,
        visitor: &'static str,
        answer: impl FnOnce(&mut Self) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if let Some(stop) = self.stop {
            return Err(self.halt(stop));
        }
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.halt(Stop::Steps));
        }
        if self.stack.len() >= MAX_DEPTH {
            let stop = match self.open_minimal.last() {
                Some(&(key, i)) => {
                    if let Some(v) = self.enums.get_mut(key) {
                        v.diverged[i] = true;
                    }
                    Stop::Diverged
                }
                None => Stop::Depth,
            };
            return Err(self.halt(stop));
        }
        let again = self.stack.contains(&visitor);
        self.recursive |= again;
        let was = self.minimal;
        self.minimal |= again;
        self.stack.push(visitor);
        let result = answer(self);
        self.stack.pop();
        self.minimal = was;
        result
    }

    /// The variant to take of the enum `key` with `n` variants.
    fn choose(&mut self, key: &'static str, n: usize) -> Result<usize, Error> {
        let minimal = self.minimal;
        let v = self.enums.entry(key).or_insert_with(|| Variants::new(n));
        if n == 0 || v.explored.len() != n {
            return Err(Error("an enum without variants".into()));
        }
        if !minimal {
            v.seen_full = true;
            if let Some(i) = v.explored.iter().position(|e| !e) {
                v.explored[i] = true;
                self.run_choices.push((key, i));
                return Ok(i);
            }
            return Ok(v.completed.iter().position(|c| *c).unwrap_or(0));
        }
        let pick = v
            .completed
            .iter()
            .position(|c| *c)
            .or_else(|| v.diverged.iter().position(|d| !d));
        match pick {
            Some(i) => Ok(i),
            None => Err(self.halt(Stop::Depth)),
        }
    }

    fn ask(&mut self, method: &'static str) -> Error {
        self.halt(Stop::Asked(method))
    }
}

/// An error of a traced `Deserialize` (its visitor's, or the trace's own).
#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Error(msg.to_string())
    }
}

macro_rules! scalars {
    ($($method:ident => $visit:ident($zero:expr, $one:expr);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.enter(type_name::<V>(), |t| {
                    if t.flavor == 0 { visitor.$visit($zero) } else { visitor.$visit($one) }
                })
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for &mut Tracer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(self.ask("deserialize_any"))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(self.ask("deserialize_identifier"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(self.ask("deserialize_ignored_any"))
    }

    scalars! {
        deserialize_bool => visit_bool(false, true);
        deserialize_i8 => visit_i8(0, 1);
        deserialize_i16 => visit_i16(0, 1);
        deserialize_i32 => visit_i32(0, 1);
        deserialize_i64 => visit_i64(0, 1);
        deserialize_i128 => visit_i128(0, 1);
        deserialize_u8 => visit_u8(0, 1);
        deserialize_u16 => visit_u16(0, 1);
        deserialize_u32 => visit_u32(0, 1);
        deserialize_u64 => visit_u64(0, 1);
        deserialize_u128 => visit_u128(0, 1);
        deserialize_f32 => visit_f32(0.0, 1.0);
        deserialize_f64 => visit_f64(0.0, 1.0);
        deserialize_char => visit_char('a', '0');
        deserialize_str => visit_str("", "0");
        deserialize_string => visit_string(String::new(), "0".to_owned());
        deserialize_bytes => visit_bytes(&[], &[0; 16]);
        deserialize_byte_buf => visit_byte_buf(Vec::new(), vec![0; 16]);
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enter(type_name::<V>(), |t| {
            if t.minimal {
                visitor.visit_none()
            } else {
                visitor.visit_some(t)
            }
        })
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enter(type_name::<V>(), |_| visitor.visit_unit())
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.enter(type_name::<V>(), |t| visitor.visit_newtype_struct(t))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enter(type_name::<V>(), |t| {
            let len = usize::from(!t.minimal);
            visitor.visit_seq(Seq::new(t, len))
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.enter(type_name::<V>(), |t| visitor.visit_seq(Seq::new(t, len)))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enter(type_name::<V>(), |t| {
            let len = usize::from(!t.minimal);
            visitor.visit_map(Map { t, left: len })
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // As postcard does: the fields in order, as a sequence.
        self.deserialize_tuple(fields.len(), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let key = type_name::<V>();
        self.enter(key, |t| {
            let index = t.choose(key, variants.len())?;
            let minimal = t.minimal;
            if minimal {
                t.open_minimal.push((key, index));
            }
            let result = visitor.visit_enum(Enum { t: &mut *t, index });
            if minimal {
                t.open_minimal.pop();
            }
            if result.is_ok() {
                if let Some(v) = t.enums.get_mut(key) {
                    v.completed[index] = true;
                }
            }
            result
        })
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a sequence, tuple or struct.
struct Seq<'t> {
    t: &'t mut Tracer,
    left: usize,
    /// The seed type of the previous element: an element of the same type as the one before
    /// it is answered minimally (the first one explored that type), so that an array of a
    /// thousand costs one element's trace.
    previous: Option<&'static str>,
}

impl<'t> Seq<'t> {
    fn new(t: &'t mut Tracer, left: usize) -> Self {
        Seq {
            t,
            left,
            previous: None,
        }
    }
}

impl<'de> de::SeqAccess<'de> for Seq<'_> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let this = type_name::<S>();
        let repeated = self.previous.replace(this) == Some(this);
        let was = self.t.minimal;
        self.t.minimal |= repeated;
        let value = seed.deserialize(&mut *self.t);
        self.t.minimal = was;
        value.map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// The entries of a map.
struct Map<'t> {
    t: &'t mut Tracer,
    left: usize,
}

impl<'de> de::MapAccess<'de> for Map<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        seed.deserialize(&mut *self.t).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        self.left = self.left.saturating_sub(1);
        seed.deserialize(&mut *self.t)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// The chosen variant of an enum.
struct Enum<'t> {
    t: &'t mut Tracer,
    index: usize,
}

impl<'de, 't> de::EnumAccess<'de> for Enum<'t> {
    type Error = Error;
    type Variant = Enum<'t>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        // As postcard does: the variant's index.
        let index = u32::try_from(self.index).unwrap_or(u32::MAX);
        let value = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(index))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(self.t)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(Seq::new(self.t, len))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_seq(Seq::new(self.t, fields.len()))
    }
}
