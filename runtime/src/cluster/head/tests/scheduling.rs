//! Placement, dependencies, failures, freeing and lending, and the names of failed
//! arguments.

use std::collections::VecDeque;

use super::*;
use crate::cluster::head::dependencies::ArgNames;

#[test]
fn first_fit_spreads_a_burst_and_queues_the_rest() {
    let (head, other) = (nid(), nid());
    let mut s = Scheduler::new(head, Arc::new(ObjectStore::new()));
    let (htx, mut hrx) = mpsc::unbounded_channel();
    let (otx, mut orx) = mpsc::unbounded_channel();
    s.add_node(other, "o:1".into(), &cpus(2.0), otx);
    s.add_node(head, "h:1".into(), &cpus(2.0), htx);
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let d = s.add_conn(dtx, JobId(1));
    for i in 0..5 {
        s.submit(d, task(i, vec![], vec![oid(100 + i)]), "x".into());
    }
    let on_head = executed(&drain(&mut hrx));
    let on_other = executed(&drain(&mut orx));
    assert_eq!(on_head, vec![TaskId(0), TaskId(1)]);
    assert_eq!(on_other, vec![TaskId(2), TaskId(3)]);
    assert_eq!(s.counts().waiting, 1);
    s.task_finished(head, TaskId(0), stored(oid(100)), None);
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(4)]);
    let ready = drain(&mut drx);
    assert!(
        matches!(&ready[..], [Message::ObjectReady { location, inline: Some(_), .. }] if location == "h:1")
    );
}

#[test]
fn refs_wait_failures_propagate_and_impossible_tasks_fail_at_once() {
    let head = nid();
    let mut s = Scheduler::new(head, Arc::new(ObjectStore::new()));
    let (htx, mut hrx) = mpsc::unbounded_channel();
    s.add_node(head, "h:1".into(), &cpus(1.0), htx);
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let d = s.add_conn(dtx, JobId(1));
    s.submit(d, task(1, vec![], vec![oid(1)]), "x".into());
    s.submit(
        d,
        task(2, vec![WireArg::Ref(oid(1))], vec![oid(2)]),
        "x".into(),
    );
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(1)]);
    s.task_finished(
        head,
        TaskId(1),
        TaskOutcome::Failed {
            error: Error::new(ErrorKind::TaskPanicked, "boom"),
            retryable: false,
        },
        None,
    );
    let msgs = drain(&mut drx);
    assert_eq!(msgs.len(), 2);
    let Message::ObjectFailed { error, .. } = &msgs[1] else {
        panic!("{msgs:?}")
    };
    assert_eq!(error.kind(), ErrorKind::DependencyFailed);
    assert!(error.message().contains("argument #1 failed: boom"));
    let mut gpu = task(3, vec![], vec![oid(3)]);
    gpu.resources.insert("GPU".into(), 1.0);
    s.submit(d, gpu, "x".into());
    let msgs = drain(&mut drx);
    let [Message::ObjectFailed { error, .. }] = &msgs[..] else {
        panic!("{msgs:?}")
    };
    assert_eq!(error.kind(), ErrorKind::ResourceUnavailable);
    assert!(error.message().contains("`GPU`"), "{error}");
    assert!(executed(&drain(&mut hrx)).is_empty());
}

#[test]
fn a_dead_node_reruns_its_tasks_and_rebuilds_lost_objects() {
    let (mut s, d) = scheduler_with_driver();
    let (head, mut hrx) = one_cpu_node(&mut s, "h:1");
    let (other, mut orx) = one_cpu_node(&mut s, "o:1");
    s.submit(d, task(1, vec![], vec![oid(1)]), "x".into());
    s.submit(d, task(2, vec![], vec![oid(2)]), "x".into());
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(1)]);
    assert_eq!(executed(&drain(&mut orx)), vec![TaskId(2)]);
    // Task 2's big output lives on the other node only.
    s.task_finished(
        other,
        TaskId(2),
        TaskOutcome::Stored(vec![StoredObject {
            id: oid(2),
            size: 1 << 20,
            inline: None,
        }]),
        None,
    );
    s.task_finished(head, TaskId(1), stored(oid(1)), None);
    s.submit(
        d,
        task(3, vec![WireArg::Ref(oid(2))], vec![oid(3)]),
        "x".into(),
    );
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(3)]);
    s.node_lost(other, "killed");
    // Task 3 is still running on the head; its argument's loss matters for new tasks.
    s.submit(
        d,
        task(4, vec![WireArg::Ref(oid(2))], vec![oid(4)]),
        "x".into(),
    );
    s.task_finished(head, TaskId(3), stored(oid(3)), None);
    // Task 2 runs again on the head, then task 4.
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(2)]);
    s.task_finished(head, TaskId(2), stored(oid(2)), None);
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(4)]);
}

#[test]
fn released_objects_are_freed_once_no_task_needs_them_and_escaped_ones_with_their_job() {
    let (head, other) = (nid(), nid());
    let mut s = Scheduler::new(head, Arc::new(ObjectStore::new()));
    let (htx, _hrx) = mpsc::unbounded_channel();
    let (otx, mut orx) = mpsc::unbounded_channel();
    s.add_node(other, "o:1".into(), &cpus(1.0), otx);
    // Everything runs on the other node.
    s.add_node(head, "h:1".into(), &cpus(0.0), htx);
    let (dtx, _drx) = mpsc::unbounded_channel();
    let d = s.add_conn(dtx, JobId(1));
    let big = |id| {
        TaskOutcome::Stored(vec![StoredObject {
            id,
            size: 1 << 20,
            inline: None,
        }])
    };
    s.submit(d, task(1, vec![], vec![oid(1)]), "x".into());
    s.submit(
        d,
        task(2, vec![WireArg::Ref(oid(1))], vec![oid(2)]),
        "x".into(),
    );
    // Released while still being made and needed by task 2: kept.
    s.release(d, &[oid(1)]);
    assert_eq!(executed(&drain(&mut orx)), vec![TaskId(1)]);
    s.task_finished(other, TaskId(1), big(oid(1)), None);
    assert!(s.objects.contains_key(&oid(1)));
    assert_eq!(executed(&drain(&mut orx)), vec![TaskId(2)]);
    s.task_finished(other, TaskId(2), big(oid(2)), None);
    // Task 2 ended: its argument goes, with its lineage.
    assert!(!s.objects.contains_key(&oid(1)));
    assert!(!s.tasks.contains_key(&TaskId(1)));
    // A release from another connection changes nothing; the owner's frees on the node.
    let (etx, _erx) = mpsc::unbounded_channel();
    let e = s.add_conn(etx, JobId(1));
    s.release(e, &[oid(2)]);
    assert!(s.objects.contains_key(&oid(2)));
    s.release(d, &[oid(2)]);
    assert!(!s.objects.contains_key(&oid(2)));
    let deleted: Vec<_> = drain(&mut orx)
        .into_iter()
        .filter_map(|m| match m {
            Message::DeleteObjects { ids } => Some(ids),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, vec![vec![oid(1)], vec![oid(2)]]);
    // Escaped ids stay; the owner leaving releases the rest.
    s.put(d, oid(3), Some(vec![1]));
    s.put(d, oid(4), Some(vec![1]));
    s.escape(&[oid(3)]);
    s.remove_conn(d);
    assert!(s.objects.contains_key(&oid(3)));
    assert!(!s.objects.contains_key(&oid(4)));
    assert_eq!(s.tables(), (1, 0));
    // Their job ending frees them too: nothing outside the job can hold the id.
    s.job_ended(JobId(1));
    assert_eq!(s.tables(), (0, 0));
}

#[test]
fn a_blocked_task_lends_its_cpu() {
    let (mut s, head, mut hrx, d) = one_cpu_cluster();
    s.submit(d, task(1, vec![], vec![oid(1)]), "x".into());
    s.submit(d, task(2, vec![], vec![oid(2)]), "x".into());
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(1)]);
    s.task_blocked(TaskId(1));
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(2)]);
    s.task_finished(head, TaskId(2), stored(oid(2)), None);
    s.task_unblocked(TaskId(1));
    s.task_finished(head, TaskId(1), stored(oid(1)), None);
    assert_eq!(s.available(head).unwrap()["CPU"], 1.0);
}

#[test]
fn a_full_cluster_sends_tasks_ahead_and_the_node_starts_them_in_place_of_ended_ones() {
    let (mut s, head, mut hrx, d) = one_cpu_cluster();
    for i in 1..=6 {
        s.submit(d, task(i, vec![], vec![oid(i)]), "x".into());
    }
    let sent = drain(&mut hrx);
    assert_eq!(executed(&sent), vec![TaskId(1)]);
    // Two held per CPU; the rest wait at the head.
    assert_eq!(held(&sent), vec![TaskId(2), TaskId(3)]);
    assert_eq!(s.counts().waiting, 5);
    // The node went on with task 2 by itself: the head counts it and tops the node up.
    s.task_finished(head, TaskId(1), stored(oid(1)), Some(TaskId(2)));
    let sent = drain(&mut hrx);
    assert!(executed(&sent).is_empty());
    assert_eq!(held(&sent), vec![TaskId(4)]);
    assert_eq!(s.available(head).unwrap()["CPU"], 0.0);
    assert_eq!(s.counts().running, 1);
    // A task that ends with nothing started in its place frees its CPU for the oldest held.
    s.task_finished(head, TaskId(2), stored(oid(2)), None);
    let sent = drain(&mut hrx);
    assert_eq!(executed(&sent), vec![TaskId(3)]);
    assert_eq!(held(&sent), vec![TaskId(5)]);
    s.task_finished(head, TaskId(3), stored(oid(3)), Some(TaskId(4)));
    s.task_finished(head, TaskId(4), stored(oid(4)), Some(TaskId(5)));
    assert_eq!(held(&drain(&mut hrx)), vec![TaskId(6)]);
    s.task_finished(head, TaskId(5), stored(oid(5)), Some(TaskId(6)));
    s.task_finished(head, TaskId(6), stored(oid(6)), None);
    assert!(drain(&mut hrx).is_empty());
    assert_eq!(s.available(head).unwrap()["CPU"], 1.0);
    let c = s.counts();
    assert_eq!((c.waiting, c.running, c.finished), (0, 0, 6));
}

#[test]
fn a_held_task_the_head_started_is_not_counted_again_when_the_node_reports_it() {
    let (mut s, head, mut hrx, d) = one_cpu_cluster();
    s.submit(d, task(1, vec![], vec![oid(1)]), "x".into());
    s.submit(d, task(2, vec![], vec![oid(2)]), "x".into());
    assert_eq!(held(&drain(&mut hrx)), vec![TaskId(2)]);
    // Task 1 blocks: its CPU goes to the held task, which the head starts ...
    s.task_blocked(TaskId(1));
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(2)]);
    s.task_unblocked(TaskId(1));
    // ... while the node, which had not read that yet, started it in place of task 1.
    s.task_finished(head, TaskId(1), stored(oid(1)), Some(TaskId(2)));
    assert_eq!(s.available(head).unwrap()["CPU"], 0.0);
    s.task_finished(head, TaskId(2), stored(oid(2)), None);
    assert_eq!(s.available(head).unwrap()["CPU"], 1.0);
}

#[test]
fn a_held_task_that_blocks_before_the_head_hears_it_started_lends_its_cpu_when_it_does() {
    let (mut s, head, mut hrx, d) = one_cpu_cluster();
    for i in 1..=3 {
        s.submit(d, task(i, vec![], vec![oid(i)]), "x".into());
    }
    assert_eq!(held(&drain(&mut hrx)), vec![TaskId(2), TaskId(3)]);
    // The worker's report overtakes the node's: task 2 blocks (waiting for task 3, say).
    s.task_blocked(TaskId(2));
    assert!(executed(&drain(&mut hrx)).is_empty());
    s.task_finished(head, TaskId(1), stored(oid(1)), Some(TaskId(2)));
    // Task 2 runs blocked, so its CPU is lent at once: task 3 starts.
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(3)]);
    s.task_finished(head, TaskId(3), stored(oid(3)), None);
    s.task_unblocked(TaskId(2));
    s.task_finished(head, TaskId(2), stored(oid(2)), None);
    assert_eq!(s.available(head).unwrap()["CPU"], 1.0);
}

#[test]
fn the_tasks_a_dead_node_held_run_elsewhere() {
    let (mut s, d) = scheduler_with_driver();
    let (head, mut hrx) = one_cpu_node(&mut s, "h:1");
    let (other, mut orx) = one_cpu_node(&mut s, "o:1");
    for i in 1..=6 {
        s.submit(d, task(i, vec![], vec![oid(i)]), "x".into());
    }
    let (to_head, to_other) = (drain(&mut hrx), drain(&mut orx));
    assert_eq!(executed(&to_head), vec![TaskId(1)]);
    assert_eq!(executed(&to_other), vec![TaskId(2)]);
    // Held by the node holding fewest, the head's first on ties.
    assert_eq!(held(&to_head), vec![TaskId(3), TaskId(5)]);
    assert_eq!(held(&to_other), vec![TaskId(4), TaskId(6)]);
    s.node_lost(other, "killed");
    // The head's node runs everything now, in its own order after what it holds.
    let mut ran = Vec::new();
    let mut running = TaskId(1);
    let mut holding: VecDeque<TaskId> = VecDeque::from([TaskId(3), TaskId(5)]);
    loop {
        let next = holding.pop_front();
        s.task_finished(head, running, stored(oid(running.0)), next);
        ran.push(running);
        let sent = drain(&mut hrx);
        holding.extend(held(&sent));
        let started = executed(&sent);
        match (next, started.as_slice()) {
            (Some(n), []) => running = n,
            (None, [n]) => running = *n,
            (None, []) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    ran.sort_unstable_by_key(|t| t.0);
    assert_eq!(ran, (1..=6).map(TaskId).collect::<Vec<_>>());
    assert!(drain(&mut orx).is_empty());
    assert_eq!(s.available(head).unwrap()["CPU"], 1.0);
}

#[test]
fn failed_arguments_are_named_once_their_function_sent_its_names_and_the_names_are_bounded() {
    let mut names = ArgNames::default();
    let mut t = task(1, vec![], vec![]);
    assert_eq!(names.name(&t, 1), "#2");
    t.arg_names = Some(Box::new(vec!["a".into(), "b".into()]));
    names.learn(&t);
    t.arg_names = None;
    assert_eq!(names.name(&t, 1), "`b`");
    assert_eq!(names.name(&t, 5), "#6");
    // Another build of the function (another hash) has names of its own.
    t.signature_hash = 2;
    assert_eq!(names.name(&t, 0), "#1");
    // Too many or too long names from a peer are not kept.
    t.arg_names = Some(Box::new(vec!["x".repeat(ArgNames::MAX_NAME + 1)]));
    names.learn(&t);
    assert_eq!(names.name(&t, 0), "#1");
    for i in 0..ArgNames::MAX_FUNCTIONS + 10 {
        t.function = format!("f{i}");
        t.arg_names = Some(Box::new(vec!["p".into()]));
        names.learn(&t);
    }
    assert_eq!(names.0.len(), ArgNames::MAX_FUNCTIONS);
}
