//! A deserializer that counts how deeply the value being decoded nests and refuses it past a
//! limit, around any other deserializer.
//!
//! Recursion in decoding follows recursion in the input: a recursive type (a list, a tree)
//! or a `serde_json::Value` recurses once per level a peer chose to send, and neither postcard
//! nor MessagePack's decoder bounds every path (postcard bounds none). Every nested value
//! passes through a `deserialize_*` call of the deserializer it is read from, so wrapping the
//! deserializer, and everything it hands to visitors (sequences, maps, enum variants, `Some`,
//! newtypes), counts every level.

use std::cell::Cell;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// The nesting allowed and used by one decoding.
#[derive(Debug)]
pub(super) struct Budget {
    depth: Cell<u32>,
    limit: u32,
    exceeded: Cell<bool>,
}

impl Budget {
    pub(super) fn new(limit: u32) -> Self {
        Budget {
            depth: Cell::new(0),
            limit,
            exceeded: Cell::new(false),
        }
    }

    /// Whether the decoding was refused for nesting too deep (the error it returned may not
    /// say: postcard drops the messages of custom errors).
    pub(super) fn exceeded(&self) -> bool {
        self.exceeded.get()
    }

    /// One level deeper around `f`, unless that is past the limit.
    fn nest<R, E: de::Error>(&self, f: impl FnOnce() -> Result<R, E>) -> Result<R, E> {
        let depth = self.depth.get();
        if depth >= self.limit {
            self.exceeded.set(true);
            return Err(E::custom(format_args!(
                "the value nests deeper than {} levels",
                self.limit
            )));
        }
        self.depth.set(depth + 1);
        let result = f();
        self.depth.set(depth);
        result
    }
}

/// `D`, counting nesting against `budget`.
pub(super) struct Bounded<'b, D> {
    inner: D,
    budget: &'b Budget,
}

impl<'b, D> Bounded<'b, D> {
    pub(super) fn new(inner: D, budget: &'b Budget) -> Self {
        Bounded { inner, budget }
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                let budget = self.budget;
                budget.nest(|| self.inner.$method($($arg,)* Wrap { inner: visitor, budget }))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Bounded<'_, D> {
    type Error = D::Error;

    forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor whose nested input is counted too.
struct Wrap<'b, V> {
    inner: V,
    budget: &'b Budget,
}

macro_rules! visit {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.expecting(f)
    }

    visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Bounded::new(d, self.budget))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner
            .visit_newtype_struct(Bounded::new(d, self.budget))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Wrap {
            inner: seq,
            budget: self.budget,
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Wrap {
            inner: map,
            budget: self.budget,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Wrap {
            inner: data,
            budget: self.budget,
        })
    }
}

/// A seed whose deserializer is counted.
struct Seed<'b, S> {
    inner: S,
    budget: &'b Budget,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Bounded::new(d, self.budget))
    }
}

impl<'b, A> Wrap<'b, A> {
    fn seed<S>(&self, inner: S) -> Seed<'b, S> {
        Seed {
            inner,
            budget: self.budget,
        }
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'b, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Wrap<'b, A> {
    type Error = A::Error;
    type Variant = Wrap<'b, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let budget = self.budget;
        let (value, variant) = self.inner.variant_seed(Seed {
            inner: seed,
            budget,
        })?;
        Ok((
            value,
            Wrap {
                inner: variant,
                budget,
            },
        ))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let budget = self.budget;
        self.inner.tuple_variant(
            len,
            Wrap {
                inner: visitor,
                budget,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let budget = self.budget;
        self.inner.struct_variant(
            fields,
            Wrap {
                inner: visitor,
                budget,
            },
        )
    }
}
