//! Work that ends without finishing: the tasks of a job whose driver left, tasks waiting for
//! ids nobody made, and calls of actors nobody created.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn a_job_that_ends_cancels_its_running_held_and_queued_tasks_and_frees_their_cpus() {
    let (mut s, node, mut nrx, _) = one_cpu_cluster();
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let d = s.add_conn(dtx, JobId(1));
    // One CPU: the first runs, two are held by the node, the rest wait at the head.
    for i in 0..5 {
        s.submit(d, task(i, vec![], vec![oid(100 + i)]), "x".into());
    }
    let sent = drain(&mut nrx);
    assert_eq!(executed(&sent), vec![TaskId(0)]);
    assert_eq!(held(&sent), vec![TaskId(1), TaskId(2)]);
    assert_eq!(s.counts().running, 1);
    assert_eq!(s.counts().waiting, 4);

    s.job_ended(JobId(1));
    let sent = drain(&mut nrx);
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::CancelJob { job_id } if *job_id == JobId(1))),
        "{sent:?}"
    );
    assert_eq!(s.counts().running, 0);
    assert_eq!(s.counts().waiting, 0);
    assert_eq!(s.available(node).unwrap()["CPU"], 1.0);
    let failed: Vec<ErrorKind> = drain(&mut drx)
        .iter()
        .filter_map(|m| match m {
            Message::ObjectFailed { error, .. } => Some(error.kind()),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![ErrorKind::Cancelled; 5]);
    // Nothing of the job is kept.
    assert_eq!(s.tables(), (0, 0));

    // The killed task's report comes late: ignored, the CPU stays free.
    s.task_finished(
        node,
        TaskId(0),
        TaskOutcome::Failed {
            error: Error::new(ErrorKind::System, "worker killed"),
            retryable: true,
        },
        None,
    );
    assert_eq!(s.available(node).unwrap()["CPU"], 1.0);
    // Another job's task runs at once; the ended job's late submissions are refused.
    let (etx, _erx) = mpsc::unbounded_channel();
    let e = s.add_conn(etx, JobId(2));
    let mut other = task(10, vec![], vec![oid(110)]);
    other.job_id = JobId(2);
    s.submit(e, other, "x".into());
    assert_eq!(executed(&drain(&mut nrx)), vec![TaskId(10)]);
    s.submit(d, task(11, vec![], vec![oid(111)]), "x".into());
    let refused = drain(&mut drx);
    assert!(
        matches!(&refused[..], [Message::ObjectFailed { error, .. }] if error.kind() == ErrorKind::Cancelled),
        "{refused:?}"
    );
    assert!(executed(&drain(&mut nrx)).is_empty());
}

#[test]
fn an_argument_nobody_made_fails_its_task_after_a_grace_period() {
    let (mut s, _node, mut nrx, _) = one_cpu_cluster();
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let d = s.add_conn(dtx, JobId(1));
    // A task on an id nobody made, and one on an id whose producer comes a moment later.
    s.submit(
        d,
        task(1, vec![WireArg::Ref(oid(999))], vec![oid(101)]),
        "x".into(),
    );
    s.submit(
        d,
        task(2, vec![WireArg::Ref(oid(500))], vec![oid(102)]),
        "x".into(),
    );
    s.watch(d, oid(998));
    s.submit(d, task(3, vec![], vec![oid(500)]), "x".into());
    let now = Instant::now();
    s.expire_unknown(now);
    assert!(drain(&mut drx).is_empty());
    s.expire_unknown(now + UNKNOWN_GRACE + Duration::from_secs(1));
    let mut failed: Vec<(ObjectId, ErrorKind)> = drain(&mut drx)
        .into_iter()
        .filter_map(|m| match m {
            Message::ObjectFailed { id, error } => {
                assert!(error.message().contains("unknown"), "{error}");
                Some((id, error.kind()))
            }
            _ => None,
        })
        .collect();
    failed.sort_by_key(|(id, _)| *id);
    assert_eq!(
        failed,
        vec![
            (oid(101), ErrorKind::DependencyFailed),
            (oid(998), ErrorKind::ObjectLost),
        ]
    );
    // The task whose argument was made later still runs.
    s.task_finished(_node, TaskId(3), stored(oid(500)), None);
    assert!(executed(&drain(&mut nrx)).contains(&TaskId(2)));
}

#[test]
fn an_object_whose_node_does_not_answer_is_rebuilt_and_a_put_one_stays() {
    let (mut s, _, mut hrx, _) = one_cpu_cluster();
    let (other, mut orx) = one_cpu_node(&mut s, "o:1");
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let d = s.add_conn(dtx, JobId(1));
    // The head's CPU is busy: the producer runs on the other node.
    s.submit(d, task(1, vec![], vec![oid(100)]), "x".into());
    s.submit(d, task(2, vec![], vec![oid(101)]), "x".into());
    assert_eq!(executed(&drain(&mut hrx)), vec![TaskId(1)]);
    assert_eq!(executed(&drain(&mut orx)), vec![TaskId(2)]);
    s.task_finished(other, TaskId(2), stored(oid(101)), None);
    // A reader could not fetch it from there: lost there, deleted there, made again.
    s.object_unreachable(oid(101), "o:1");
    let sent = drain(&mut orx);
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::DeleteObjects { ids } if ids == &vec![oid(101)])),
        "{sent:?}"
    );
    s.submit(
        d,
        task(3, vec![WireArg::Ref(oid(101))], vec![oid(102)]),
        "x".into(),
    );
    assert_eq!(executed(&drain(&mut orx)), vec![TaskId(2)]);
    // A report naming a place the object is not at (any more) changes nothing.
    s.task_finished(other, TaskId(2), stored(oid(101)), None);
    s.object_unreachable(oid(101), "elsewhere:1");
    assert_eq!(executed(&drain(&mut orx)), vec![TaskId(3)]);

    // A put value cannot be made again: it stays where it is.
    s.put(d, oid(200), Some(vec![1]));
    s.object_unreachable(oid(200), "h:1");
    drain(&mut drx);
    s.watch(d, oid(200));
    let answer = drain(&mut drx);
    assert!(
        matches!(&answer[..], [Message::ObjectReady { id, .. }] if *id == oid(200)),
        "{answer:?}"
    );
}

/// A handle can reach a caller before the actor's creation reaches the head (the creator, a
/// worker, sends the creation on its own connection while the handle travels in its task's
/// result): the call waits for the creation, and only a call of an actor still unknown after
/// the grace period fails.
#[test]
fn a_call_that_comes_before_its_actors_creation_waits_and_unknown_actors_fail_after_the_grace() {
    let (mut s, head, mut hrx, _) = one_cpu_cluster();
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let d = s.add_conn(dtx, JobId(1));
    let call = |id: u128| TaskSubmission {
        function: "t::A::m".into(),
        resources: BTreeMap::new(),
        ..task(id, vec![], vec![oid(id)])
    };
    let actor = crate::actor::ActorId::next();
    s.submit_call(d, actor, call(10));
    assert!(
        drain(&mut drx).is_empty(),
        "the call failed before its actor was created"
    );
    let creation = ActorCreation {
        actor_id: actor,
        job_id: JobId(1),
        create: TaskSubmission {
            function: "t::A::new".into(),
            resources: BTreeMap::new(),
            ..task(20, vec![], vec![])
        },
        class: "t::A".into(),
        name: None,
        namespace: "test".into(),
        max_restarts: 0,
        max_concurrency: 1,
    };
    s.create_actor(d, creation, "x".into());
    let started = drain(&mut hrx);
    let Some(Message::StartActor(a)) = started.iter().find(|m| matches!(m, Message::StartActor(_)))
    else {
        panic!("{started:?}")
    };
    s.actor_started(head, actor, a.incarnation, Ok(()));
    let sent: Vec<Message> = started.into_iter().chain(drain(&mut hrx)).collect();
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::ExecuteActorCall(c) if c.task.task_id == TaskId(10))),
        "the early call was not sent once its actor started: {sent:?}"
    );
    // An actor nobody creates: its call fails once the grace period is over, not before.
    let never = crate::actor::ActorId::next();
    s.submit_call(d, never, call(11));
    s.expire_unknown(Instant::now());
    assert!(drain(&mut drx).is_empty());
    s.expire_unknown(Instant::now() + UNKNOWN_GRACE);
    let msgs = drain(&mut drx);
    let [Message::ObjectFailed { id, error }] = &msgs[..] else {
        panic!("{msgs:?}")
    };
    assert_eq!(*id, oid(11));
    assert_eq!(error.kind(), ErrorKind::ActorDied);
    assert!(
        error.message().contains("unknown to this cluster"),
        "{error}"
    );
}
