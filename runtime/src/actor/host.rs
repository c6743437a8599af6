//! An actor hosted for a cluster node: the worker process of the actor builds it with `new`
//! from encoded arguments, keeps it in an [`ActorCell`] of its own (so calls keep their order
//! and `max_concurrency` as in one process) and runs the calls the node sends by method name,
//! answering each with its encoded result.

use super::cell::{Mailbox, Status};
use super::*;
use crate::registry::{Done, HostedActor, Outputs};

/// Builds an actor with `construct` in this process and returns it as a [`HostedActor`] that
/// runs calls by name through `dispatch`. A panicking constructor is an
/// [`ActorDied`](ErrorKind::ActorDied) error with the panic's message.
#[doc(hidden)]
pub fn host_actor<A, D>(
    max_concurrency: u32,
    construct: impl FnOnce() -> A,
    dispatch: D,
) -> Result<Box<dyn HostedActor>>
where
    A: ActorMethods,
    D: Fn(&RawHandle<A>, &str, &[u8], Done) + Send + Sync + 'static,
{
    let spec = &A::__SPEC;
    let rt = runtime::current()?;
    let actor = std::panic::catch_unwind(AssertUnwindSafe(construct)).map_err(|panic| {
        Error::new(
            ErrorKind::ActorDied,
            format!(
                "its constructor `{}::new` panicked: {}",
                spec.class,
                crate::error::panic_message(&*panic)
            ),
        )
    })?;
    let cell = Arc::new(ActorCell {
        id: ActorId::next(),
        class: spec.class,
        name: None,
        max_concurrency: max_concurrency.max(1) as usize,
        // The head accounts the actor's resources on its node; here it holds none.
        demand: Demand::default(),
        sched: Some(rt.sched.clone()),
        runtime: Arc::downgrade(&rt),
        mailbox: Mutex::new(Mailbox::new(
            Status::Alive,
            Some(Arc::new(tokio::sync::RwLock::new(actor))),
        )),
    });
    let raw = RawHandle::local(Arc::new(HandleGuard { cell: cell.clone() }));
    Ok(Box::new(Hosted {
        raw,
        cell,
        dispatch,
    }))
}

struct Hosted<A: Send + Sync + 'static, D> {
    raw: RawHandle<A>,
    cell: Arc<ActorCell<A>>,
    dispatch: D,
}

impl<A, D> HostedActor for Hosted<A, D>
where
    A: Send + Sync + 'static,
    D: Fn(&RawHandle<A>, &str, &[u8], Done) + Send + Sync + 'static,
{
    fn call(&self, method: &str, args: &[u8], done: Done) {
        (self.dispatch)(&self.raw, method, args, done)
    }

    fn state_gone(&self) -> Box<dyn FnMut() -> bool + Send> {
        // Holding a strong ref makes this check the last holder: the state's drop then runs
        // here, when this check drops it, not on a thread that a process exit could cut short
        // (the Arc's count reaches zero before its value's drop has run).
        let mut state = self.cell.mailbox.lock().state.clone();
        Box::new(move || match &state {
            Some(s) if Arc::strong_count(s) > 1 => false,
            _ => {
                drop(state.take());
                true
            }
        })
    }

    fn exit_requested(&self) -> Arc<dyn Fn() -> bool + Send + Sync> {
        let cell = self.cell.clone();
        let told = std::sync::atomic::AtomicBool::new(false);
        Arc::new(move || {
            cell.mailbox.lock().exiting && !told.swap(true, std::sync::atomic::Ordering::AcqRel)
        })
    }

    fn kill(&self) {
        self.cell.kill("was killed");
    }
}

/// Where a hosted call's result goes: encoded, to `done`, one value per output object. Dropped
/// unfilled (the actor died before running the call), it reports an actor-died error.
#[doc(hidden)]
pub struct Encoded<T> {
    what: &'static str,
    done: Option<Done>,
    encode: fn(&'static str, T) -> Result<Outputs>,
}

impl<T> fmt::Debug for Encoded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoded").field("what", &self.what).finish()
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> Encoded<T> {
    /// The result of a call of `what` (`Class::method`), for `done`: one object.
    pub fn new(what: &'static str, done: Done) -> Self {
        Self::split(what, done, |what, value| {
            crate::registry::encode(what, &value).map(|bytes| vec![bytes])
        })
    }
}

impl<T> Encoded<T> {
    /// The results of a call of `what` with several output objects (`num_returns`), for
    /// `done`: `encode` encodes each element of the value on its own, in order.
    pub fn split(
        what: &'static str,
        done: Done,
        encode: fn(&'static str, T) -> Result<Outputs>,
    ) -> Self {
        Encoded {
            what,
            done: Some(done),
            encode,
        }
    }

    fn finish(&mut self, result: Result<Outputs>) {
        if let Some(done) = self.done.take() {
            done(result);
        }
    }
}

impl<T: Send + 'static> Returns for Encoded<T> {
    type Value = T;

    fn fulfil(mut self, value: T) {
        let encoded = (self.encode)(self.what, value);
        self.finish(encoded);
    }

    fn fail(mut self, error: Error) {
        self.finish(Err(error));
    }

    fn into_slots(self) -> Vec<Arc<Slot>> {
        Vec::new()
    }

    fn outputs(&self) -> crate::task::CallOutputs {
        crate::task::CallOutputs::None
    }
}

impl<T> Drop for Encoded<T> {
    fn drop(&mut self) {
        let what = self.what;
        self.finish(Err(Error::new(
            ErrorKind::ActorDied,
            format!("the call of `{what}` was dropped: its actor stopped before running it"),
        )));
    }
}
