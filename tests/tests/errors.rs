//! Failures: a panic in a task becomes an error naming the function and carrying the message;
//! dependents fail with `DependencyFailed` whose `source()` chain reaches the original; `get_all`,
//! `wait` and `.await` report failed objects; nothing hangs.

use std::error::Error as _;
use std::time::Duration;

use raykit::{ErrorKind, ObjectRef};
use raykit_tests::within;

raykit_tests::suite!(Shape::cpus(2));

#[raykit::remote]
fn boom(x: i64) -> i64 {
    if x >= 0 {
        panic!("boom at {x}");
    }
    x
}

#[raykit::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[raykit::remote]
fn panics_with_static_str() -> String {
    panic!("a static message")
}

#[raykit::remote]
fn panics_with_unwrap() -> u8 {
    let parsed: Result<u8, _> = "not a number".parse::<u8>();
    parsed.unwrap()
}

#[raykit::remote]
fn panics_with_a_number() -> u8 {
    std::panic::panic_any(42u32)
}

mod inner {
    #[raykit::remote]
    pub(crate) fn nested_boom() -> u8 {
        panic!("deep inside a module")
    }
}

#[test]
fn panic_becomes_an_error_naming_the_function() {
    init();
    within(60, || {
        let err = raykit::get(&boom::remote(7)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        let text = err.to_string();
        assert!(text.contains("errors::boom"), "function not named: {text}");
        assert!(text.contains("boom at 7"), "panic message missing: {text}");
        assert!(err.source().is_none());
        assert_eq!(err.root_cause().kind(), ErrorKind::TaskPanicked);

        let err = raykit::get(&panics_with_static_str::remote()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        assert!(err.to_string().contains("errors::panics_with_static_str"));
        assert!(err.to_string().contains("a static message"));

        let err = raykit::get(&panics_with_unwrap::remote()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        assert!(err.to_string().contains("errors::panics_with_unwrap"));
        assert!(
            err.to_string().contains("InvalidDigit"),
            "the unwrap message is lost: {err}"
        );

        let err = raykit::get(&inner::nested_boom::remote()).unwrap_err();
        assert!(
            err.to_string().contains("errors::inner::nested_boom"),
            "module path missing: {err}"
        );
        assert!(err.to_string().contains("deep inside a module"));

        // A payload that is not a string still names the function.
        let err = raykit::get(&panics_with_a_number::remote()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        assert!(
            err.to_string().contains("errors::panics_with_a_number"),
            "{err}"
        );

        // The same function succeeds when it does not panic: the error belongs to the call.
        assert_eq!(raykit::get(&boom::remote(-1)).unwrap(), -1);
    });
}

#[test]
fn reading_a_failed_object_twice_gives_the_error_twice() {
    init();
    within(60, || {
        let r = boom::remote(1);
        let a = raykit::get(&r).unwrap_err();
        let b = raykit::get(&r).unwrap_err();
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(b.kind(), ErrorKind::TaskPanicked);
    });
}

#[test]
fn dependents_fail_with_the_cause_in_their_source_chain() {
    init();
    within(60, || {
        let first = boom::remote(3);
        let second = add::remote(&first, 1);
        let third = add::remote(5, &second);

        let e2 = raykit::get(&second).unwrap_err();
        assert_eq!(e2.kind(), ErrorKind::DependencyFailed);
        assert!(e2.to_string().contains("errors::add"), "{e2}");
        assert!(e2.to_string().contains("boom at 3"), "{e2}");

        let e3 = raykit::get(&third).unwrap_err();
        assert_eq!(e3.kind(), ErrorKind::DependencyFailed);
        // It names the call and the original failure, once.
        assert!(e3.to_string().contains("errors::add"), "{e3}");
        assert!(e3.to_string().contains("argument `b`"), "{e3}");
        assert_eq!(e3.to_string().matches("boom at 3").count(), 1, "{e3}");
        // Its source is the original failure: `first`'s panic, not `second`'s error.
        let s1 = e3.source().expect("third has a source");
        let s1 = s1
            .downcast_ref::<raykit::Error>()
            .expect("the source is a raykit::Error");
        assert_eq!(s1.kind(), ErrorKind::TaskPanicked);
        assert!(s1.to_string().contains("boom at 3"));
        assert!(s1.to_string().contains("errors::boom"));
        assert!(s1.source().is_none());
        // root_cause walks the same chain.
        assert_eq!(e3.root_cause().kind(), ErrorKind::TaskPanicked);
        assert!(e3.root_cause().to_string().contains("boom at 3"));
        // Walking with the std trait only also finds the panic message.
        let mut chain = Vec::new();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e3);
        while let Some(e) = cur {
            chain.push(e.to_string());
            cur = e.source();
        }
        assert_eq!(chain.len(), 2, "{chain:#?}");
        assert!(chain[1].contains("boom at 3"));
    });
}

/// Every link of a long chain of dependent tasks fails after the first one panics; each
/// error names its own call and the panic once, so they all stay small (each used to repeat
/// the whole message of the one before: quadratic in the length of the chain).
#[test]
fn errors_of_a_long_chain_of_dependents_stay_small() {
    init();
    within(120, || {
        let first = boom::remote(42);
        let mut last = add::remote(&first, 1);
        let mut links = vec![last.clone()];
        for i in 0..3_000 {
            last = add::remote(&last, i);
            if i % 500 == 0 {
                links.push(last.clone());
            }
        }
        links.push(last);
        for link in &links {
            let e = raykit::get(link).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DependencyFailed);
            let text = e.to_string();
            assert!(text.len() < 300, "{} bytes: {text:.300}", text.len());
            assert_eq!(text.matches("boom at 42").count(), 1, "{text}");
            let mut depth = 0;
            let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(c) = cur {
                depth += 1;
                cur = c.source();
            }
            assert_eq!(depth, 2, "{e:?}");
            assert!(e.root_cause().to_string().contains("boom at 42"));
        }
    });
}

#[test]
fn a_good_argument_next_to_a_failed_one_does_not_save_the_task() {
    init();
    within(60, || {
        let good = add::remote(1, 1);
        let bad = boom::remote(0);
        let both = add::remote(&good, &bad);
        let err = raykit::get(&both).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DependencyFailed);
        assert_eq!(err.root_cause().kind(), ErrorKind::TaskPanicked);
        assert_eq!(raykit::get(&good).unwrap(), 2);
    });
}

#[test]
fn get_all_fails_when_one_fails() {
    init();
    within(60, || {
        let refs: Vec<ObjectRef<i64>> =
            vec![add::remote(1, 2), boom::remote(11), add::remote(3, 4)];
        let err = raykit::get_all(&refs).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        assert!(err.to_string().contains("boom at 11"));
        // The others are fine on their own.
        assert_eq!(raykit::get(&refs[0]).unwrap(), 3);
        assert_eq!(raykit::get(&refs[2]).unwrap(), 7);
    });
}

/// Waits until the test thread meets it at the rendezvous `name`.
#[raykit::remote]
fn held_until_met(name: String) -> i64 {
    raykit_tests::rendezvous(&name).meet(2, Duration::from_secs(300));
    1
}

#[test]
fn get_all_fails_at_once_when_one_fails_while_another_is_still_pending() {
    init();
    within(60, || {
        let name = "errors::get_all_fails_at_once".to_owned();
        let pending = held_until_met::remote(name.clone());
        let refs: Vec<ObjectRef<i64>> = vec![pending, boom::remote(12)];
        // The pending task runs until this thread meets it, after `get_all` returns: waiting
        // for it would hang until `within` fails the test.
        let err = raykit::get_all(&refs).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        assert!(err.to_string().contains("boom at 12"), "{err}");
        assert!(raykit_tests::rendezvous(&name).meet(2, Duration::from_secs(30)));
        assert_eq!(raykit::get(&refs[0]).unwrap(), 1);
    });
}

#[test]
fn wait_counts_failed_objects_as_ready() {
    init();
    within(60, || {
        let refs = vec![boom::remote(1), boom::remote(2)];
        // No timeout: if failures never counted as ready this would hang.
        let (ready, pending) = raykit::wait(&refs, 2, None);
        assert_eq!(ready, refs);
        assert!(pending.is_empty());
        assert!(refs.iter().all(|r| r.is_ready()));
        let (ready, _) = raykit::wait(&refs, 1, Some(Duration::from_secs(30)));
        assert_eq!(ready.len(), 1);
    });
}

#[test]
fn awaiting_a_failed_ref_gives_the_error() {
    init();
    within(60, || {
        let r = boom::remote(5);
        let err = futures::executor::block_on(async { (&r).await }).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        assert!(err.to_string().contains("boom at 5"));
        let dep = add::remote(r, 1);
        let err = futures::executor::block_on(dep).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DependencyFailed);
        assert!(err.root_cause().to_string().contains("boom at 5"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let err = rt.block_on(async { boom::remote(6).await }).unwrap_err();
        assert!(err.to_string().contains("boom at 6"));
    });
}

#[raykit::remote(num_returns = 2)]
fn pair_boom(x: i64) -> (i64, String) {
    if x > 0 {
        panic!("pair failed");
    }
    (x, x.to_string())
}

#[test]
fn every_output_of_a_failed_multi_return_task_fails() {
    init();
    within(60, || {
        let (a, b) = pair_boom::remote(1);
        for err in [raykit::get(&a).unwrap_err(), raykit::get(&b).unwrap_err()] {
            assert_eq!(err.kind(), ErrorKind::TaskPanicked);
            assert!(err.to_string().contains("errors::pair_boom"));
            assert!(err.to_string().contains("pair failed"));
        }
    });
}

#[test]
fn a_long_chain_of_failures_does_not_hang() {
    init();
    within(60, || {
        let mut r = boom::remote(0);
        for i in 0..200 {
            r = add::remote(r, i);
        }
        let err = raykit::get(&r).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DependencyFailed);
        assert_eq!(err.root_cause().kind(), ErrorKind::TaskPanicked);
        assert!(err.root_cause().to_string().contains("boom at 0"));
        // The runtime keeps working after many failures.
        assert_eq!(raykit::get(&add::remote(2, 2)).unwrap(), 4);
    });
}

#[raykit::remote]
fn nested_failure() -> i64 {
    // The error of a child read inside a task propagates as a value of the task's choosing.
    match raykit::get(&boom::remote(9)) {
        Ok(v) => v,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::TaskPanicked);
            -9
        }
    }
}

#[raykit::remote]
fn nested_unwrap() -> i64 {
    raykit::get(&boom::remote(10)).unwrap()
}

#[test]
fn failures_of_nested_tasks() {
    init();
    within(60, || {
        assert_eq!(raykit::get(&nested_failure::remote()).unwrap(), -9);
        let err = raykit::get(&nested_unwrap::remote()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        let text = err.to_string();
        assert!(text.contains("errors::nested_unwrap"), "{text}");
        assert!(text.contains("boom at 10"), "child's message lost: {text}");
    });
}

#[test]
fn errors_are_std_errors_that_cross_threads() {
    fn assert_error<E: std::error::Error + Send + Sync + Clone + 'static>() {}
    assert_error::<raykit::Error>();
    init();
    let err = raykit::get(&boom::remote(1)).unwrap_err();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err.clone());
    assert_eq!(boxed.to_string(), err.to_string());
    let from_thread = std::thread::spawn(move || err.kind()).join().unwrap();
    assert_eq!(from_thread, ErrorKind::TaskPanicked);
    // `?` converts into the usual boxed error.
    fn via_question_mark() -> Result<i64, Box<dyn std::error::Error>> {
        Ok(raykit::get(&boom::remote(2))?)
    }
    assert!(via_question_mark()
        .unwrap_err()
        .to_string()
        .contains("boom at 2"));
}
