use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::trace::{trace, Verdict};
use super::*;

fn format<T: DeserializeOwned + 'static>() -> Format {
    format_of::<T>()
}

fn round_trip<T>(value: T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + 'static,
{
    let bytes = encode(&value).expect("encodes");
    assert_eq!(decode::<T>(&bytes).expect("decodes"), value);
    // Measured, then encoded in place: the same bytes.
    let measured = measure(&value).expect("measures");
    assert_eq!(measured.len(), bytes.len());
    let mut out = vec![0xAAu8; measured.len()];
    encode_into(&value, measured, &mut out).expect("encodes in place");
    assert_eq!(out, bytes);
    // Copied, as a stored value that is not `Clone` is for a reader.
    assert_eq!(copy(&value).expect("copies"), value);
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Plain {
    a: u8,
    b: String,
    c: Vec<u8>,
    d: Option<(i64, f64)>,
    e: BTreeMap<String, Vec<u32>>,
    f: [u16; 3],
    g: (),
    h: char,
    i: Kind,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Kind {
    Unit,
    Newtype(u32),
    Tuple(u8, String),
    Struct { x: i32, y: Option<Box<Kind>> },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(untagged)]
enum Untagged {
    Number(u64),
    Text(String),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(tag = "t")]
enum Internal {
    A { x: u8 },
    B,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    A(u8),
    B,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Inner {
    x: u32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Flattened {
    name: String,
    #[serde(flatten)]
    inner: Inner,
}

/// An ordinary enum whose last variant holds a `Value`.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum LateValue {
    First(u8),
    Second { s: String },
    Third(Option<Box<LateValue>>),
    Last(Value),
}

/// A `Value` reached only through a variant of an enum inside a variant.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Outer {
    Plain,
    Nested(NestedValue),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum NestedValue {
    Nothing,
    Json(Vec<Value>),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum List {
    Cons(i32, Box<List>),
    Nil,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

/// Recursive, with a `Value` only deep inside.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Node {
    next: Option<Box<Node>>,
    payload: Payload,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Payload {
    Empty,
    Data(Vec<u8>),
    Meta(BTreeMap<String, Value>),
}

/// Generic, with the same name at two depths: only the inner one holds a `Value`.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Wrapper<T> {
    inner: Option<T>,
}

/// Rejects zeros (as `NonZeroU32` does): traced again with ones.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Ids {
    id: std::num::NonZeroU32,
    more: Vec<std::num::NonZeroU64>,
}

/// Its `Deserialize` always fails: the trace cannot vouch for it.
#[derive(Serialize, Debug, PartialEq)]
struct Stubborn(u8);

impl<'de> Deserialize<'de> for Stubborn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let n = u8::deserialize(d)?;
        if n == 7 {
            Ok(Stubborn(n))
        } else {
            Err(serde::de::Error::custom("only seven"))
        }
    }
}

/// Its `Deserialize` panics unless given input it likes.
#[derive(Serialize, Debug, PartialEq)]
struct Panicky(String);

impl<'de> Deserialize<'de> for Panicky {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        assert!(s.starts_with('p'), "not a p-word");
        Ok(Panicky(s))
    }
}

/// Serializes as a sequence of unknown length.
#[derive(Deserialize, Debug, PartialEq)]
struct Filtered(Vec<u32>);

impl Serialize for Filtered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().filter(|_| true))
    }
}

/// Refuses to be serialized.
#[derive(Deserialize, Debug, PartialEq)]
struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("not today"))
    }
}

#[test]
fn plain_types_are_postcard() {
    assert_eq!(format::<u8>(), Format::Postcard);
    assert_eq!(format::<i128>(), Format::Postcard);
    assert_eq!(format::<Vec<u8>>(), Format::Postcard);
    assert_eq!(format::<String>(), Format::Postcard);
    assert_eq!(format::<Option<String>>(), Format::Postcard);
    assert_eq!(format::<(u8, String, bool)>(), Format::Postcard);
    assert_eq!(format::<HashMap<String, Vec<f64>>>(), Format::Postcard);
    assert_eq!(format::<HashSet<u64>>(), Format::Postcard);
    assert_eq!(format::<BTreeMap<u32, (u8, char)>>(), Format::Postcard);
    assert_eq!(format::<[u64; 32]>(), Format::Postcard);
    assert_eq!(format::<std::time::Duration>(), Format::Postcard);
    assert_eq!(format::<Result<u8, String>>(), Format::Postcard);
    assert_eq!(format::<Plain>(), Format::Postcard);
    assert_eq!(format::<Kind>(), Format::Postcard);
    assert_eq!(format::<Ids>(), Format::Postcard);
    assert_eq!(format::<crate::Error>(), Format::Postcard);
    assert_eq!(format::<crate::ObjectRef<Vec<u8>>>(), Format::Postcard);
    assert_eq!(format::<Vec<crate::ObjectRef<String>>>(), Format::Postcard);
}

#[test]
fn recursive_types_are_postcard_and_bounded() {
    assert_eq!(
        trace::<List>(),
        Verdict::Postcard { recursive: true },
        "a list ends with its last variant"
    );
    assert_eq!(trace::<Tree>(), Verdict::Postcard { recursive: true });
    assert_eq!(trace::<Kind>(), Verdict::Postcard { recursive: true });
    assert_eq!(trace::<Plain>(), Verdict::Postcard { recursive: true });
    assert_eq!(trace::<Vec<u8>>(), Verdict::Postcard { recursive: false });
    assert_eq!(trace::<Inner>(), Verdict::Postcard { recursive: false });
}

#[test]
fn types_that_ask_the_format_are_self_describing() {
    assert_eq!(format::<Value>(), Format::SelfDescribing);
    assert_eq!(format::<Vec<Value>>(), Format::SelfDescribing);
    assert_eq!(format::<Option<Value>>(), Format::SelfDescribing);
    assert_eq!(format::<BTreeMap<String, Value>>(), Format::SelfDescribing);
    assert_eq!(format::<(u8, Value)>(), Format::SelfDescribing);
    assert_eq!(format::<Untagged>(), Format::SelfDescribing);
    // Postcard cannot read the tag of an adjacently tagged enum either (an identifier).
    assert_eq!(format::<Adjacent>(), Format::SelfDescribing);
    assert_eq!(format::<Internal>(), Format::SelfDescribing);
    assert_eq!(format::<Flattened>(), Format::SelfDescribing);
    assert_eq!(format::<LateValue>(), Format::SelfDescribing);
    assert_eq!(format::<Outer>(), Format::SelfDescribing);
    assert_eq!(format::<Node>(), Format::SelfDescribing);
    assert_eq!(format::<Wrapper<Wrapper<Value>>>(), Format::SelfDescribing);
    assert_eq!(format::<Result<u8, Value>>(), Format::SelfDescribing);
    assert!(matches!(
        trace::<Value>(),
        Verdict::SelfDescribing(why) if why.contains("deserialize_any")
    ));
    assert!(matches!(
        trace::<Flattened>(),
        Verdict::SelfDescribing(why) if why.contains("deserialize_identifier")
            || why.contains("deserialize_any")
    ));
}

#[test]
fn what_the_trace_cannot_vouch_for_is_self_describing() {
    assert!(matches!(
        trace::<Stubborn>(),
        Verdict::SelfDescribing(why) if why.contains("only seven")
    ));
    assert!(matches!(
        trace::<Panicky>(),
        Verdict::SelfDescribing(why) if why.contains("panicked")
    ));
    round_trip(Stubborn(7));
    round_trip(Panicky("pear".into()));
}

#[test]
fn round_trips_of_postcard_values() {
    round_trip(0u8);
    round_trip(u128::MAX);
    round_trip(String::from("héllo"));
    round_trip(vec![0u8; 10_000]);
    round_trip(Some(vec![(1u8, -2i64)]));
    round_trip(Plain {
        a: 1,
        b: "b".into(),
        c: vec![1, 2, 3],
        d: Some((-5, 0.5)),
        e: BTreeMap::from([("k".to_owned(), vec![1, 2])]),
        f: [1, 2, 3],
        g: (),
        h: 'ß',
        i: Kind::Struct {
            x: -1,
            y: Some(Box::new(Kind::Tuple(2, "t".into()))),
        },
    });
    round_trip(List::Cons(1, Box::new(List::Cons(2, Box::new(List::Nil)))));
    round_trip(Adjacent::A(3));
    // One byte of format, then postcard: a `Vec<u8>` costs one byte per element.
    let bytes = encode(&vec![7u8; 1000]).unwrap();
    assert_eq!(bytes.len(), 1 + 2 + 1000);
    assert_eq!(bytes[0], POSTCARD);
}

#[test]
fn round_trips_of_self_describing_values() {
    let sample = json!({"a": [1, -2, 3.5, "x", null, true], "b": {"c": {}}, "big": u64::MAX});
    round_trip(sample.clone());
    round_trip(vec![sample.clone(), json!([])]);
    round_trip(Vec::<Value>::new());
    round_trip(Some(json!(1)));
    round_trip(None::<Value>);
    round_trip(Untagged::Number(3));
    round_trip(Untagged::Text("t".into()));
    round_trip(Internal::A { x: 4 });
    round_trip(Internal::B);
    round_trip(Flattened {
        name: "n".into(),
        inner: Inner { x: 9 },
    });
    round_trip(LateValue::First(1));
    round_trip(LateValue::Second { s: "s".into() });
    round_trip(LateValue::Third(Some(Box::new(LateValue::Last(json!([
        1
    ]))))));
    round_trip(Outer::Nested(NestedValue::Json(vec![json!(1)])));
    round_trip(Node {
        next: Some(Box::new(Node {
            next: None,
            payload: Payload::Meta(BTreeMap::from([("k".to_owned(), json!("v"))])),
        })),
        payload: Payload::Data(vec![1, 2]),
    });
    round_trip((u128::MAX, i128::MIN, json!(0)));
    let bytes = encode(&sample).unwrap();
    assert_eq!(bytes[0], MSGPACK);
    // A large one: its length takes more than one byte.
    round_trip(Value::Array(vec![json!("0123456789"); 1000]));
}

#[test]
fn a_sequence_of_unknown_length_falls_back_to_self_describing() {
    round_trip(Filtered(vec![1, 2, 3]));
    round_trip(Filtered(Vec::new()));
    assert_eq!(format::<Filtered>(), Format::SelfDescribing);
}

#[test]
fn a_value_that_cannot_be_serialized_is_an_error_naming_its_type() {
    let e = encode(&Unserializable).expect_err("refuses");
    assert_eq!(e.kind(), ErrorKind::Serialization);
    assert!(e.message().contains("Unserializable"), "{e}");
    assert!(e.message().contains("not today"), "{e}");
    assert!(measure(&Unserializable).is_err());
}

#[test]
fn arguments_are_read_one_after_another() {
    let mut bytes = encode(&5u32).unwrap();
    bytes.extend(encode(&json!({"x": [1]})).unwrap());
    bytes.extend(encode(&String::from("s")).unwrap());
    bytes.extend(encode(&Untagged::Number(1)).unwrap());
    let (a, b, c, d): (u32, Value, String, Untagged) = ArgReader::read("f", &bytes, |r| {
        Ok((r.next("a")?, r.next("b")?, r.next("c")?, r.next("d")?))
    })
    .unwrap();
    assert_eq!(
        (a, b, c, d),
        (5, json!({"x": [1]}), "s".to_owned(), Untagged::Number(1))
    );
    let () = ArgReader::read("f", &[], |_| Ok(())).unwrap();
    let e = ArgReader::read("m::f", &bytes[..3], |r| {
        Ok((r.next::<u32>("a")?, r.next::<Value>("b")?))
    })
    .expect_err("cut short");
    assert!(e.message().contains("`m::f`, argument `b`"), "{e}");
    assert!(e.message().contains("serde_json::value::Value"), "{e}");
}

#[test]
fn hostile_input_is_an_error() {
    // Empty, an unknown format, lengths past the end, a malformed varint.
    assert!(decode::<u8>(&[]).is_err());
    assert!(decode::<u8>(&[9, 1]).is_err());
    assert!(decode::<Value>(&[MSGPACK, 200, 1, 0x90]).is_err());
    assert!(decode::<Value>(&[
        MSGPACK, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
    ])
    .is_err());
    // A MessagePack array that announces four billion elements.
    assert!(decode::<Value>(&[MSGPACK, 5, 0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(decode::<Vec<Value>>(&[MSGPACK, 5, 0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
    // A string that announces more than there is.
    assert!(decode::<Value>(&[MSGPACK, 5, 0xdb, 0xff, 0xff, 0xff, 0xff]).is_err());
    // Postcard that announces a huge vector.
    assert!(decode::<Vec<u64>>(&[POSTCARD, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    // A postcard value sent for a self-describing type, and the other way round.
    assert!(decode::<Value>(&[POSTCARD, 1, 2, 3]).is_err());
}

/// `depth` nested JSON arrays, as MessagePack.
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut payload = vec![0x91; depth];
    payload.push(0x90);
    let mut bytes = vec![0u8; 1 + VARINT_MAX];
    let n = head_of(payload.len(), (&mut bytes[..]).try_into().unwrap());
    bytes.truncate(n);
    bytes.extend(payload);
    bytes
}

/// A `List` of `len` cells, as postcard.
fn long_list(len: usize) -> Vec<u8> {
    let mut bytes = vec![POSTCARD];
    for _ in 0..len {
        bytes.extend([0, 2]); // Cons(1, ..)
    }
    bytes.push(1); // Nil
    bytes
}

#[test]
fn deep_input_is_refused_without_exhausting_the_stack() {
    // Within the limit: decoded; past it: an error that says so. Both on a thread with a
    // small stack, where the unbounded recursion would overflow.
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(|| {
            let ok: Value = decode(&nested_arrays(100)).expect("100 levels decode");
            assert!(ok.is_array());
            let e = decode::<Value>(&nested_arrays(100_000)).expect_err("too deep");
            assert!(e.message().contains("deeper than"), "{e}");
            let e = decode::<Vec<Value>>(&nested_arrays(100_000)).expect_err("too deep");
            assert!(e.message().contains("deeper than"), "{e}");
            let list: List = decode(&long_list(50)).expect("a short list decodes");
            assert!(matches!(list, List::Cons(1, _)));
            let e = decode::<List>(&long_list(100_000)).expect_err("too long a list");
            assert!(e.message().contains("deeper than"), "{e}");
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_input_at_the_limit_fits_a_small_stack() {
    // The deepest input accepted, decoded on a thread with half the usual stack (unoptimized,
    // a level of a `Value` takes up to 4 KiB, a cell of a list 2 KiB).
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(|| {
            // (The innermost level of each, an empty array or `Nil`, reads one more value.)
            let levels = MAX_DEPTH as usize - 2;
            let v: Value = decode(&nested_arrays(levels)).expect("decodes at the limit");
            assert!(v.is_array());
            assert!(decode::<Value>(&nested_arrays(levels + 2)).is_err());
            let cells = MAX_POSTCARD_DEPTH as usize - 2;
            let _: List = decode(&long_list(cells)).expect("decodes at the limit");
            assert!(decode::<List>(&long_list(cells + 2)).is_err());
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn refs_and_handles_trace_without_side_effects() {
    // Tracing a type that holds refs starts no runtime and exports nothing.
    assert_eq!(
        trace::<(Vec<crate::ObjectRef<u8>>, Value)>(),
        Verdict::SelfDescribing("its `Deserialize` calls `deserialize_any`".into())
    );
    assert_eq!(
        trace::<Option<crate::ObjectRef<u8>>>(),
        Verdict::Postcard { recursive: false }
    );
}

#[test]
fn a_some_of_nil_in_a_self_describing_value_reads_back_as_none() {
    // As through JSON; postcard values keep the difference.
    assert_eq!(
        decode::<Option<Value>>(&encode(&Some(Value::Null)).unwrap()).unwrap(),
        None
    );
    assert_eq!(
        decode::<Option<Option<u8>>>(&encode(&Some(None::<u8>)).unwrap()).unwrap(),
        Some(None)
    );
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(untagged)]
enum RefOrValue {
    Ref(crate::ObjectRef<u8>),
    Value(Value),
}

#[test]
fn refs_inside_untagged_enums() {
    assert_eq!(format::<RefOrValue>(), Format::SelfDescribing);
    let bytes = encode(&RefOrValue::Value(json!(1))).unwrap();
    assert_eq!(
        decode::<RefOrValue>(&bytes).unwrap(),
        RefOrValue::Value(json!(1))
    );
    // A ref, whose id is a `u128`: serde's buffering of untagged enums cannot hold one.
    let r = crate::put(5u8);
    let bytes = encode(&RefOrValue::Ref(r.clone())).unwrap();
    match decode::<RefOrValue>(&bytes).expect("a ref inside an untagged enum decodes") {
        RefOrValue::Ref(back) => {
            assert_eq!(back, r);
            assert_eq!(crate::get(&back).unwrap(), 5);
        }
        other => panic!("read back as {other:?}"),
    }
    // In postcard, refs stay as they were.
    assert_eq!(format::<crate::ObjectRef<u8>>(), Format::Postcard);
    let bytes = encode(&r).unwrap();
    assert_eq!(bytes[1..], postcard::to_allocvec(&r.id()).unwrap()[..]);
}
