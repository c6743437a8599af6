//! `#[raykit::method(num_returns = N)]` on an actor method: a method returning a tuple of N
//! elements gives the caller a tuple of N `ObjectRef`s, one per element, as
//! `#[raykit::remote(num_returns = N)]` does for functions. Sync and async methods, `&self` and
//! `&mut self`, N = 2 and 3; each output is its own object (read in any order, passed on to
//! other calls, dropped alone), all of them ready when the call is done and none before; a
//! panicking method fails every output and the actor keeps its state.

use std::time::Duration;

use raykit::{ActorHandle, ErrorKind, ObjectRef};
use raykit_tests::{gate, unique_id, within};

raykit_tests::suite!(Shape::cpus(2));

/// A fresh name for the gates of one test.
fn fresh(what: &str) -> String {
    format!("actor_returns::{what}#{}", unique_id())
}

/// An actor whose methods return several objects, one of every shape.
#[derive(raykit::Actor)]
struct Ledger {
    total: u64,
    entries: Vec<String>,
}

#[raykit::actor]
impl Ledger {
    pub fn new(start: u64) -> Self {
        Ledger {
            total: start,
            entries: Vec::new(),
        }
    }

    /// `&self`, sync, two outputs of different types.
    #[raykit::method(num_returns = 2)]
    pub fn split(&self, v: Vec<i64>) -> (Vec<i64>, String) {
        let (left, right) = v.split_at(v.len() / 2);
        (left.to_vec(), format!("{right:?} after {}", self.total))
    }

    /// `&mut self`, sync, three outputs: the new total, how many entries, the entry.
    #[raykit::method(num_returns = 3)]
    pub fn record(&mut self, amount: u64, label: String) -> (u64, usize, String) {
        self.total += amount;
        let entry = format!("{label}:{amount}");
        self.entries.push(entry.clone());
        (self.total, self.entries.len(), entry)
    }

    /// `&self`, async, two outputs of one type.
    #[raykit::method(num_returns = 2)]
    pub async fn div_rem(&self, by: u64) -> (u64, u64) {
        tokio::task::yield_now().await;
        (self.total / by, self.total % by)
    }

    /// `&mut self`, async, three outputs.
    #[raykit::method(num_returns = 3)]
    pub async fn bump(&mut self, by: u64) -> (u64, u64, bool) {
        let before = self.total;
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.total += by;
        (before, self.total, self.total % 2 == 0)
    }

    /// Waits at the gate `name`, then returns three outputs.
    #[raykit::method(num_returns = 3)]
    pub fn gated(&self, name: String) -> (u64, String, Vec<u8>) {
        raykit_tests::gate(&name).wait();
        (self.total, name, vec![1, 2, 3])
    }

    /// Panics before it returns any of its three outputs.
    #[raykit::method(num_returns = 3)]
    pub fn explode(&mut self, msg: String) -> (u64, String, Vec<u8>) {
        panic!("{msg}")
    }

    /// Panics, async, `&self`.
    #[raykit::method(num_returns = 2)]
    pub async fn explode_async(&self, msg: String) -> (u64, u64) {
        tokio::task::yield_now().await;
        panic!("{msg}")
    }

    /// `num_returns = 1` is one object holding the whole tuple, as without the attribute.
    #[raykit::method(num_returns = 1)]
    pub fn pair(&self) -> (u64, usize) {
        (self.total, self.entries.len())
    }

    /// A method with one output, next to those with several.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// A method taking values.
    pub fn add_all(&mut self, amounts: Vec<u64>) -> u64 {
        self.total += amounts.iter().sum::<u64>();
        self.total
    }

    /// A method taking refs inside a value, awaiting each.
    pub async fn add_refs(&mut self, refs: Vec<ObjectRef<u64>>) -> u64 {
        for r in refs {
            self.total += r.await.expect("a ref passed inside a value");
        }
        self.total
    }
}

#[raykit::remote]
fn sum(v: Vec<i64>) -> i64 {
    v.iter().sum()
}

#[raykit::remote]
fn shout(s: String) -> String {
    s.to_uppercase()
}

/// Calls a several-output method from inside a task (a worker process on a cluster) and
/// returns what it read, in reverse order.
#[raykit::remote]
fn record_from_a_task(ledger: ActorHandle<Ledger>, amount: u64) -> (String, usize, u64) {
    let (total, count, entry) = ledger.record(amount, "task".to_owned());
    (
        raykit::get(&entry).expect("entry"),
        raykit::get(&count).expect("count"),
        raykit::get(&total).expect("total"),
    )
}

#[test]
fn a_ref_self_sync_method_gives_two_refs() {
    init();
    within(60, || {
        let ledger = Ledger::remote(7);
        let (left, right): (ObjectRef<Vec<i64>>, ObjectRef<String>) =
            ledger.split(vec![1, 2, 3, 4, 5]);
        assert_ne!(left.id(), right.id(), "each output is its own object");
        // The second output first.
        assert_eq!(raykit::get(&right).unwrap(), "[3, 4, 5] after 7");
        assert_eq!(raykit::get(&left).unwrap(), vec![1, 2]);
        // Read again: the same values.
        assert_eq!(raykit::get(&left).unwrap(), vec![1, 2]);
        assert_eq!(raykit::get(&right).unwrap(), "[3, 4, 5] after 7");
    });
}

#[test]
fn a_mut_self_sync_method_gives_three_refs_and_keeps_its_state() {
    init();
    within(60, || {
        let ledger = Ledger::remote(0);
        let first = ledger.record(5, "a".to_owned());
        let second = ledger.record(10, "b".to_owned());
        // The second call's outputs, last element first.
        let (total, count, entry) = second;
        assert_eq!(raykit::get(&entry).unwrap(), "b:10");
        assert_eq!(raykit::get(&count).unwrap(), 2);
        assert_eq!(raykit::get(&total).unwrap(), 15);
        // The first call's, middle one first.
        assert_eq!(raykit::get(&first.1).unwrap(), 1);
        assert_eq!(raykit::get(&first.2).unwrap(), "a:5");
        assert_eq!(raykit::get(&first.0).unwrap(), 5);
        assert_eq!(raykit::get(&ledger.total()).unwrap(), 15);
        assert_eq!(raykit::get(&ledger.pair()).unwrap(), (15, 2));
    });
}

#[test]
fn async_methods_give_several_refs() {
    init();
    within(60, || {
        let ledger = Ledger::remote(17);
        let (q, r): (ObjectRef<u64>, ObjectRef<u64>) = ledger.div_rem(5);
        // Outputs of one type read together, in reverse order.
        assert_eq!(
            raykit::get_all(&[r.clone(), q.clone()]).unwrap(),
            vec![2, 3]
        );
        let (before, after, even) = ledger.bump(3);
        assert!(raykit::get(&even).unwrap(), "17 + 3 is even");
        assert_eq!(raykit::get(&after).unwrap(), 20);
        assert_eq!(raykit::get(&before).unwrap(), 17);
        // Awaited, as every ref can be.
        let (before, after, even) = ledger.bump(1);
        let (b, a, e) = futures::executor::block_on(async {
            (
                after.await.unwrap(),
                before.await.unwrap(),
                even.await.unwrap(),
            )
        });
        assert_eq!((b, a, e), (21, 20, false));
        assert_eq!(raykit::get(&ledger.total()).unwrap(), 21);
    });
}

#[test]
fn outputs_are_passed_on_to_other_calls() {
    init();
    within(60, || {
        let ledger = Ledger::remote(1);
        let (left, right) = ledger.split(vec![4, 5, 6, 7]);
        // To remote functions, borrowed and owned.
        let s = sum::remote(&left);
        let loud = shout::remote(right);
        assert_eq!(raykit::get(&loud).unwrap(), "[6, 7] AFTER 1");
        assert_eq!(raykit::get(&s).unwrap(), 9);
        // To methods of the same actor and of another one, before they are ready.
        let (q, r) = ledger.div_rem(1);
        let other = Ledger::remote(100);
        let (total, count, _entry) = other.record(&q, "from q".to_owned());
        assert_eq!(raykit::get(&ledger.add_all(vec![3, 4])).unwrap(), 8);
        assert_eq!(raykit::get(&total).unwrap(), 101);
        assert_eq!(raykit::get(&count).unwrap(), 1);
        assert_eq!(raykit::get(&r).unwrap(), 0);
        // Refs inside a value, not read here first: the method awaits them.
        let (a, b) = ledger.div_rem(3); // 8 / 3, 8 % 3
        assert_eq!(raykit::get(&ledger.add_refs(vec![b, a])).unwrap(), 12);
        // And to another actor, one output each way.
        let (c, d) = ledger.div_rem(5); // 12 / 5, 12 % 5
        assert_eq!(raykit::get(&other.add_refs(vec![c])).unwrap(), 103);
        assert_eq!(raykit::get(&ledger.add_all(vec![1])).unwrap(), 13);
        assert_eq!(
            raykit::get(&other.record(&d, "d".to_owned()).0).unwrap(),
            105
        );
    });
}

#[test]
fn a_task_calls_a_method_with_several_outputs() {
    init();
    within(60, || {
        let ledger = Ledger::remote(2);
        let read = record_from_a_task::remote(ledger.clone(), 40);
        assert_eq!(raykit::get(&read).unwrap(), ("task:40".to_owned(), 1, 42));
        assert_eq!(raykit::get(&ledger.total()).unwrap(), 42);
    });
}

#[test]
fn no_output_is_ready_before_the_call_ends_and_each_can_be_read_alone() {
    init();
    within(60, || {
        let name = fresh("gated");
        let ledger = Ledger::remote(9);
        let (total, label, bytes) = ledger.gated(name.clone());
        let (ready, pending) = raykit::wait(std::slice::from_ref(&total), 1, Some(Duration::ZERO));
        assert!(ready.is_empty(), "an output ready before its call ran");
        assert_eq!(pending.len(), 1);
        let early = raykit::get_timeout(&bytes, Duration::from_millis(20));
        assert_eq!(
            early.map_err(|e| e.kind()),
            Err(ErrorKind::Timeout),
            "an output readable before its call ran"
        );
        gate(&name).open();
        // The last output alone; the others dropped unread do not matter.
        assert_eq!(raykit::get(&bytes).unwrap(), vec![1, 2, 3]);
        drop(total);
        assert_eq!(raykit::get(&label).unwrap(), name);
        // The actor goes on after outputs were dropped unread.
        let (_, _, entry) = ledger.record(1, "after".to_owned());
        assert_eq!(raykit::get(&entry).unwrap(), "after:1");
    });
}

#[test]
fn a_panicking_method_fails_every_output_and_the_actor_keeps_its_state() {
    init();
    within(60, || {
        let ledger = Ledger::remote(3);
        let (a, b, c) = ledger.explode("kaboom 3".to_owned());
        let errors = [
            raykit::get(&c).unwrap_err(),
            raykit::get(&a).unwrap_err(),
            raykit::get(&b).unwrap_err(),
        ];
        for e in &errors {
            assert_eq!(e.kind(), ErrorKind::TaskPanicked, "{e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains("Ledger::explode"),
                "method name missing: {msg}"
            );
            assert!(msg.contains("kaboom 3"), "panic text missing: {msg}");
        }
        let (q, r) = ledger.explode_async("kaboom 4".to_owned());
        for e in [raykit::get(&r).unwrap_err(), raykit::get(&q).unwrap_err()] {
            assert_eq!(e.kind(), ErrorKind::TaskPanicked, "{e:?}");
            assert!(e.to_string().contains("Ledger::explode_async"), "{e}");
            assert!(e.to_string().contains("kaboom 4"), "{e}");
        }
        // A task given a failed output fails with the panic as its cause.
        let (x, _, _) = ledger.explode("kaboom 5".to_owned());
        let e = raykit::get(&ledger.record(&x, "never".to_owned()).0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DependencyFailed, "{e:?}");
        assert!(e.root_cause().to_string().contains("kaboom 5"), "{e:?}");
        // The actor keeps its state.
        assert_eq!(raykit::get(&ledger.total()).unwrap(), 3);
        let (total, count, _) = ledger.record(1, "ok".to_owned());
        assert_eq!(raykit::get(&total).unwrap(), 4);
        assert_eq!(raykit::get(&count).unwrap(), 1);
    });
}
