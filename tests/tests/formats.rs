//! Values whose serde form needs a self-describing format: `serde_json::Value`, untagged and
//! internally tagged enums, structs with `#[serde(flatten)]`, and containers of them. They pass
//! the compile-time check like any other type, so they must work as objects (`put`/`get`, read
//! twice so that a copy is made), as task arguments and returns and as actor arguments, state
//! and returns, in both modes. Plain types around them keep working, refs inside them included.

use std::collections::BTreeMap;

use raykit::{ActorHandle, ObjectRef};
use raykit_tests::within;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

raykit_tests::suite!(Shape::cpus(2));

/// A value of every JSON kind, nested.
fn sample() -> Value {
    json!({
        "name": "raykit",
        "version": 1,
        "ratio": 0.25,
        "negative": -7,
        "big": u64::MAX,
        "tags": ["a", "b", null, true, false],
        "nested": {"empty": {}, "list": [[], [1, [2, [3]]]]},
        "nothing": null
    })
}

/// Not `Clone`: every read of an object of this type but the last copies it by encoding.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Doc {
    id: u32,
    body: Value,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(untagged)]
enum Loose {
    Number(i64),
    Text(String),
    Pair { left: u8, right: Vec<String> },
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(tag = "t")]
enum Event {
    Start { at: u64 },
    Stop { at: u64, reason: String },
    Ping,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Base {
    id: u32,
    name: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Record {
    kind: String,
    #[serde(flatten)]
    base: Base,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

/// An ordinary enum one of whose variants holds a `Value`: its first values may well be the
/// other variants.
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Message {
    Plain(u32),
    Json(Value),
}

/// Serializes its items as a sequence of unknown length (as `collect_seq` over a filtering
/// iterator does), which postcard cannot encode. Not `Clone`.
#[derive(Deserialize, Debug, PartialEq)]
struct Evens(Vec<u32>);

impl Serialize for Evens {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().filter(|n| *n % 2 == 0))
    }
}

/// A job description that carries a ref next to free-form settings.
#[derive(Serialize, Deserialize, Debug)]
struct Job {
    input: ObjectRef<Vec<u8>>,
    settings: Value,
}

/// Refs and handles inside types that serde buffers before reading them (flattened, and
/// internally tagged): their ids must survive the buffering.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind")]
enum Work {
    Sum { input: ObjectRef<Vec<u8>> },
    Read { notes: ActorHandle<Notebook> },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    id: u32,
    #[serde(flatten)]
    work: Work,
}

#[raykit::remote]
fn open(envelope: Envelope) -> (u32, Value) {
    let value = match envelope.work {
        Work::Sum { input } => {
            let bytes = raykit::get(&input).expect("the input");
            json!(bytes.iter().map(|b| u64::from(*b)).sum::<u64>())
        }
        Work::Read { notes } => raykit::get(&notes.doc()).expect("the notes"),
    };
    (envelope.id, value)
}

#[raykit::remote]
fn annotate(v: Value, by: String) -> Value {
    let mut v = v;
    v["annotated_by"] = Value::String(by);
    v
}

#[raykit::remote]
fn into_doc(id: u32, body: Value) -> Doc {
    Doc { id, body }
}

#[raykit::remote]
fn doc_id(doc: Doc) -> u32 {
    doc.id
}

#[raykit::remote]
fn next_loose(l: Loose) -> Loose {
    match l {
        Loose::Number(n) => Loose::Text(n.to_string()),
        Loose::Text(s) => Loose::Pair {
            left: s.len() as u8,
            right: vec![s],
        },
        Loose::Pair { left, .. } => Loose::Number(left.into()),
    }
}

#[raykit::remote]
fn next_event(e: Event) -> Event {
    match e {
        Event::Start { at } => Event::Stop {
            at: at + 1,
            reason: "done".into(),
        },
        Event::Stop { .. } => Event::Ping,
        Event::Ping => Event::Start { at: 0 },
    }
}

#[raykit::remote]
fn rename(r: Record, name: String) -> Record {
    let mut r = r;
    r.base.name = name;
    r.rest.insert("renamed".into(), Value::Bool(true));
    r
}

#[raykit::remote]
fn values(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({ "i": i })).collect()
}

#[raykit::remote]
fn count_values(v: Vec<Value>, maybe: Option<Value>) -> (usize, bool) {
    (v.len(), maybe.is_some())
}

#[raykit::remote]
fn wrap(n: u32, json: bool) -> Message {
    if json {
        Message::Json(json!({ "n": n }))
    } else {
        Message::Plain(n)
    }
}

#[raykit::remote]
fn unwrap_message(m: Message) -> u64 {
    match m {
        Message::Plain(n) => n.into(),
        Message::Json(v) => v["n"].as_u64().unwrap_or(0) + 1000,
    }
}

#[raykit::remote]
fn evens(upto: u32) -> Evens {
    Evens((0..upto).collect())
}

#[raykit::remote]
fn run_job(job: Job) -> (usize, Value) {
    let input = raykit::get(&job.input).expect("the job's input");
    (input.len(), job.settings)
}

/// An actor whose state, constructor argument, method arguments and returns are JSON.
#[derive(raykit::Actor)]
struct Notebook {
    doc: Value,
    log: Vec<Event>,
}

#[raykit::actor]
impl Notebook {
    pub fn new(doc: Value) -> Self {
        Notebook {
            doc,
            log: Vec::new(),
        }
    }

    pub fn set(&mut self, key: String, value: Value) -> Option<Value> {
        self.log.push(Event::Start {
            at: self.log.len() as u64,
        });
        self.doc.as_object_mut().and_then(|m| m.insert(key, value))
    }

    pub fn doc(&self) -> Value {
        self.doc.clone()
    }

    pub fn as_doc(&self, id: u32) -> Doc {
        Doc {
            id,
            body: self.doc.clone(),
        }
    }

    pub fn log(&self) -> Vec<Event> {
        self.log.clone()
    }

    pub fn loose(&self, l: Loose) -> Loose {
        l
    }
}

#[test]
fn put_and_get_a_json_value() {
    init();
    within(60, || {
        let r = raykit::put(sample());
        // The first read copies (the ref still holds the object), and so does the second.
        assert_eq!(raykit::get(&r).unwrap(), sample());
        assert_eq!(raykit::get(&r).unwrap(), sample());
        let doc = raykit::put(Doc {
            id: 7,
            body: sample(),
        });
        for _ in 0..2 {
            let back = raykit::get(&doc).unwrap();
            assert_eq!(back.id, 7);
            assert_eq!(back.body, sample());
        }
        for v in [json!(null), json!(1.5), json!("s"), json!([]), json!({})] {
            let r = raykit::put(v.clone());
            assert_eq!(raykit::get(&r).unwrap(), v);
            assert_eq!(raykit::get(&r).unwrap(), v);
        }
        // A large one (over the size that goes through shared memory on a cluster).
        let big = Value::Array((0..20_000).map(|i| json!({ "i": i, "s": "x" })).collect());
        let r = raykit::put(big.clone());
        assert_eq!(raykit::get(&r).unwrap(), big);
        assert_eq!(raykit::get(&r).unwrap(), big);
    });
}

#[test]
fn a_task_takes_and_returns_a_json_value() {
    init();
    within(60, || {
        let r = annotate::remote(sample(), "me".to_owned());
        let mut expected = sample();
        expected["annotated_by"] = json!("me");
        assert_eq!(raykit::get(&r).unwrap(), expected);
        assert_eq!(raykit::get(&r).unwrap(), expected);
        // A ref to a put value as the argument, and a result that is not `Clone`.
        let v = raykit::put(sample());
        let doc = into_doc::remote(3, &v);
        for _ in 0..2 {
            let back = raykit::get(&doc).unwrap();
            assert_eq!((back.id, &back.body), (3, &sample()));
        }
        assert_eq!(raykit::get(&doc_id::remote(&doc)).unwrap(), 3);
        assert_eq!(raykit::get(&doc_id::remote(doc)).unwrap(), 3);
    });
}

#[test]
fn untagged_enums_cross_tasks() {
    init();
    within(60, || {
        let start = Loose::Number(42);
        let text = next_loose::remote(start);
        assert_eq!(raykit::get(&text).unwrap(), Loose::Text("42".into()));
        let pair = next_loose::remote(&text);
        let expected = Loose::Pair {
            left: 2,
            right: vec!["42".into()],
        };
        assert_eq!(raykit::get(&pair).unwrap(), expected);
        assert_eq!(raykit::get(&pair).unwrap(), expected);
        let back = next_loose::remote(pair);
        assert_eq!(raykit::get(&back).unwrap(), Loose::Number(2));
        let r = raykit::put(vec![Loose::Text("t".into()), Loose::Number(-1)]);
        for _ in 0..2 {
            assert_eq!(
                raykit::get(&r).unwrap(),
                vec![Loose::Text("t".into()), Loose::Number(-1)]
            );
        }
    });
}

#[test]
fn internally_tagged_enums_cross_tasks() {
    init();
    within(60, || {
        let stop = next_event::remote(Event::Start { at: 9 });
        let expected = Event::Stop {
            at: 10,
            reason: "done".into(),
        };
        assert_eq!(raykit::get(&stop).unwrap(), expected);
        assert_eq!(raykit::get(&stop).unwrap(), expected);
        let ping = next_event::remote(&stop);
        assert_eq!(raykit::get(&ping).unwrap(), Event::Ping);
        let again = next_event::remote(ping);
        assert_eq!(raykit::get(&again).unwrap(), Event::Start { at: 0 });
        let r = raykit::put(Event::Ping);
        assert_eq!(raykit::get(&r).unwrap(), Event::Ping);
        assert_eq!(raykit::get(&r).unwrap(), Event::Ping);
    });
}

#[test]
fn flattened_structs_cross_tasks() {
    init();
    within(60, || {
        let record = Record {
            kind: "user".into(),
            base: Base {
                id: 5,
                name: "old".into(),
            },
            rest: BTreeMap::from([("score".to_owned(), json!(3.5))]),
        };
        let r = rename::remote(record.clone(), "new".to_owned());
        let mut expected = record.clone();
        expected.base.name = "new".into();
        expected.rest.insert("renamed".into(), json!(true));
        assert_eq!(raykit::get(&r).unwrap(), expected);
        assert_eq!(raykit::get(&r).unwrap(), expected);
        let put = raykit::put(record.clone());
        assert_eq!(raykit::get(&put).unwrap(), record);
        assert_eq!(raykit::get(&put).unwrap(), record);
    });
}

#[test]
fn vectors_and_options_of_values_empty_and_not() {
    init();
    within(60, || {
        // The first value of the type is empty: the format must not be chosen from it.
        let none = values::remote(0);
        assert_eq!(raykit::get(&none).unwrap(), Vec::<Value>::new());
        let counted = count_values::remote(&none, None);
        assert_eq!(raykit::get(&counted).unwrap(), (0, false));
        let three = values::remote(3);
        assert_eq!(
            raykit::get(&three).unwrap(),
            vec![json!({"i": 0}), json!({"i": 1}), json!({"i": 2})]
        );
        let counted = count_values::remote(&three, Some(json!([1, 2])));
        assert_eq!(raykit::get(&counted).unwrap(), (3, true));
        let empty = raykit::put(Vec::<Value>::new());
        assert_eq!(raykit::get(&empty).unwrap(), Vec::<Value>::new());
        assert_eq!(raykit::get(&empty).unwrap(), Vec::<Value>::new());
        let some = raykit::put(Some(json!("x")));
        assert_eq!(raykit::get(&some).unwrap(), Some(json!("x")));
        assert_eq!(raykit::get(&some).unwrap(), Some(json!("x")));
    });
}

#[test]
fn an_enum_with_one_variant_holding_a_value() {
    init();
    within(60, || {
        // The plain variant comes first, as a first value that holds no `Value` would.
        let plain = wrap::remote(4, false);
        assert_eq!(raykit::get(&plain).unwrap(), Message::Plain(4));
        assert_eq!(raykit::get(&unwrap_message::remote(plain)).unwrap(), 4);
        let json = wrap::remote(5, true);
        assert_eq!(raykit::get(&json).unwrap(), Message::Json(json!({"n": 5})));
        assert_eq!(raykit::get(&unwrap_message::remote(&json)).unwrap(), 1005);
        let r = raykit::put(Message::Json(json!([1])));
        assert_eq!(raykit::get(&r).unwrap(), Message::Json(json!([1])));
        assert_eq!(raykit::get(&r).unwrap(), Message::Json(json!([1])));
    });
}

#[test]
fn a_sequence_of_unknown_length_is_encoded() {
    init();
    within(60, || {
        let r = evens::remote(7);
        assert_eq!(raykit::get(&r).unwrap(), Evens(vec![0, 2, 4, 6]));
        assert_eq!(raykit::get(&r).unwrap(), Evens(vec![0, 2, 4, 6]));
        let put = raykit::put(Evens(vec![1, 2, 3, 4]));
        assert_eq!(raykit::get(&put).unwrap(), Evens(vec![2, 4]));
        assert_eq!(raykit::get(&put).unwrap(), Evens(vec![2, 4]));
    });
}

#[test]
fn a_ref_inside_a_json_carrying_value() {
    init();
    within(60, || {
        let input = raykit::put(vec![7u8; 300]);
        let job = Job {
            input: input.clone(),
            settings: json!({"threads": 2}),
        };
        let r = run_job::remote(job);
        assert_eq!(raykit::get(&r).unwrap(), (300, json!({"threads": 2})));
        let stored = raykit::put(Job {
            input,
            settings: json!(null),
        });
        for _ in 0..2 {
            let back = raykit::get(&stored).unwrap();
            assert_eq!(raykit::get(&back.input).unwrap(), vec![7u8; 300]);
            assert_eq!(back.settings, json!(null));
        }
    });
}

#[test]
fn an_actor_holds_and_returns_json_values() {
    init();
    within(60, || {
        let notes: ActorHandle<Notebook> = Notebook::remote(json!({"title": "t"}));
        assert_eq!(
            raykit::get(&notes.set("a".to_owned(), json!([1, {"b": null}]))).unwrap(),
            None
        );
        assert_eq!(
            raykit::get(&notes.set("a".to_owned(), json!(2))).unwrap(),
            Some(json!([1, {"b": null}]))
        );
        let doc = notes.doc();
        assert_eq!(raykit::get(&doc).unwrap(), json!({"title": "t", "a": 2}));
        assert_eq!(raykit::get(&doc).unwrap(), json!({"title": "t", "a": 2}));
        let as_doc = notes.as_doc(8);
        for _ in 0..2 {
            assert_eq!(
                raykit::get(&as_doc).unwrap(),
                Doc {
                    id: 8,
                    body: json!({"title": "t", "a": 2})
                }
            );
        }
        assert_eq!(
            raykit::get(&notes.log()).unwrap(),
            vec![Event::Start { at: 0 }, Event::Start { at: 1 }]
        );
        let l = Loose::Pair {
            left: 1,
            right: vec![],
        };
        assert_eq!(raykit::get(&notes.loose(l.clone())).unwrap(), l);
        // A ref to a value as the constructor's argument.
        let start = raykit::put(json!({"from": "ref"}));
        let other: ActorHandle<Notebook> = Notebook::remote(&start);
        assert_eq!(raykit::get(&other.doc()).unwrap(), json!({"from": "ref"}));
    });
}

#[test]
fn refs_and_handles_inside_flattened_and_tagged_values() {
    init();
    within(60, || {
        let input = raykit::put(vec![1u8, 2, 3]);
        let sum = Envelope {
            id: 1,
            work: Work::Sum { input },
        };
        assert_eq!(raykit::get(&open::remote(sum)).unwrap(), (1, json!(6)));
        let notes: ActorHandle<Notebook> = Notebook::remote(json!({"k": "v"}));
        let read = Envelope {
            id: 2,
            work: Work::Read { notes },
        };
        let stored = raykit::put(read);
        assert_eq!(
            raykit::get(&open::remote(&stored)).unwrap(),
            (2, json!({"k": "v"}))
        );
        // Read back here too, twice: the handle still calls the actor.
        for _ in 0..2 {
            match raykit::get(&stored).unwrap().work {
                Work::Read { notes } => {
                    assert_eq!(raykit::get(&notes.doc()).unwrap(), json!({"k": "v"}))
                }
                Work::Sum { .. } => panic!("read back as another variant"),
            }
        }
    });
}
