//! Byte vectors on the wire as postcard "bytes" (a length, then the bytes, copied at once)
//! instead of a sequence of `u8` (one call per byte). postcard writes both the same way, so
//! this changes speed, not the encoding. The message fields name these modules in
//! `#[serde(with = "byte_serde::...")]`.

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

    pub(crate) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
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

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
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
