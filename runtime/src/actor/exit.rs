//! [`exit_actor`]: a method ends its own actor after the call. The call that runs knows its
//! actor through a thread-local pointer, set while the method's body runs (for an async method,
//! during each poll).

use std::cell::Cell;

/// What an actor offers the method running in it: ending it after the running calls.
pub(super) trait ExitRequest {
    /// Asks the actor to end once the calls running now have answered.
    fn request_exit(&self);
}

type Current = Option<*const (dyn ExitRequest + 'static)>;

thread_local! {
    static CURRENT: Cell<Current> = const { Cell::new(None) };
}

/// Marks `actor` as the one whose method runs on this thread until the guard drops.
pub(super) fn enter(actor: &(dyn ExitRequest + 'static)) -> Entered {
    Entered(CURRENT.with(|c| c.replace(Some(actor as *const _))))
}

/// Restores what ran before on this thread.
pub(super) struct Entered(Current);

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Inside an actor method: the actor ends after this call (Ray's `ray.actor.exit_actor()`).
///
/// The call returns its value as usual; calls that run beside it (with `max_concurrency > 1`)
/// finish too; queued and later calls fail with [`ActorDied`](crate::ErrorKind::ActorDied)
/// saying the actor exited. The actor is not restarted, whatever its `max_restarts`.
///
/// # Panics
///
/// When called outside an actor method (the panic fails that task, as any panic does).
///
/// ```
/// #[derive(raykit::Actor)]
/// struct Job;
///
/// #[raykit::actor]
/// impl Job {
///     pub fn new() -> Self {
///         Job
///     }
///     pub fn finish(&self) -> u8 {
///         raykit::exit_actor();
///         1
///     }
///     pub fn ping(&self) -> u8 {
///         2
///     }
/// }
///
/// let job = Job::remote();
/// assert_eq!(raykit::get(&job.finish()).unwrap(), 1);
/// let after = raykit::get(&job.ping()).unwrap_err();
/// assert_eq!(after.kind(), raykit::ErrorKind::ActorDied);
/// ```
pub fn exit_actor() {
    let current = CURRENT.with(Cell::get);
    match current {
        // SAFETY: set only while a method of this actor runs on this thread (the guard is
        // dropped before the call ends), and the call holds the actor alive meanwhile.
        Some(actor) => unsafe { (*actor).request_exit() },
        None => panic!("raykit::exit_actor() was called outside an actor method"),
    }
}
