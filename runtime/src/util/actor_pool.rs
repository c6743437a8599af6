//! [`ActorPool`]: spread work over a fixed set of actors, one call per actor at a time.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::actor::{ActorHandle, ActorMethods};
use crate::error::{Error, ErrorKind, Result};
use crate::object::{get, get_timeout, wait, ObjectRef};

/// A call waiting for a free actor: it makes the call on the actor it is given.
type Queued<A, R> = Box<dyn FnOnce(&ActorHandle<A>) -> ObjectRef<R> + Send>;

/// A pool of actors that takes work one value at a time, as Ray's `ray.util.ActorPool`.
///
/// Each actor runs at most one of the pool's calls at a time; a value submitted while every
/// actor is busy waits in the pool until one is free. An actor is free again as soon as its call
/// is done, whether or not its result was read yet. Results are read in submission order
/// ([`get_next`](Self::get_next), [`map`](Self::map)) or as they are ready
/// ([`get_next_unordered`](Self::get_next_unordered), [`map_unordered`](Self::map_unordered)).
///
/// ```
/// use raykit::util::ActorPool;
///
/// #[derive(raykit::Actor)]
/// struct Doubler;
///
/// #[raykit::actor]
/// impl Doubler {
///     pub fn new() -> Self {
///         Doubler
///     }
///     pub fn double(&self, v: u64) -> u64 {
///         v * 2
///     }
/// }
///
/// let mut pool = ActorPool::new(vec![Doubler::remote(), Doubler::remote()]);
/// let doubled: Vec<u64> = pool
///     .map(|a, v| a.double(v), 1..=4u64)
///     .collect::<raykit::Result<_>>()
///     .unwrap();
/// assert_eq!(doubled, vec![2, 4, 6, 8]);
///
/// pool.submit(|a, v| a.double(v), 10);
/// pool.submit(|a, v| a.double(v), 20);
/// assert_eq!(pool.get_next().unwrap().unwrap(), 20);
/// assert_eq!(pool.get_next().unwrap().unwrap(), 40);
/// assert!(!pool.has_next());
/// ```
pub struct ActorPool<A: ActorMethods, R> {
    /// Actors with no call of the pool in flight.
    idle: VecDeque<ActorHandle<A>>,
    /// Calls in flight, each with the actor it holds until it is done.
    busy: Vec<(ObjectRef<R>, ActorHandle<A>)>,
    /// Submitted values whose call is made: their results, by submission index, until read.
    results: BTreeMap<u64, ObjectRef<R>>,
    /// Submitted values waiting for a free actor, in submission order.
    queued: VecDeque<(u64, Queued<A, R>)>,
    /// The index the next submitted value gets.
    next_index: u64,
}

impl<A: ActorMethods, R: 'static> ActorPool<A, R> {
    /// A pool over `actors` (more can be added with [`push`](Self::push)).
    pub fn new(actors: impl IntoIterator<Item = ActorHandle<A>>) -> Self {
        ActorPool {
            idle: actors.into_iter().collect(),
            busy: Vec::new(),
            results: BTreeMap::new(),
            queued: VecDeque::new(),
            next_index: 0,
        }
    }

    /// Submits `value`: `call(actor, value)` is made on a free actor now, or on the first one
    /// to become free. `call` makes one method call and returns its ref, e.g.
    /// `|a, v| a.double(v)`.
    pub fn submit<V, F>(&mut self, call: F, value: V)
    where
        F: FnOnce(&ActorHandle<A>, V) -> ObjectRef<R> + Send + 'static,
        V: Send + 'static,
    {
        self.reclaim();
        let index = self.next_index;
        self.next_index += 1;
        let queued: Queued<A, R> = Box::new(move |actor| call(actor, value));
        match self.idle.pop_front() {
            Some(actor) => self.start(index, queued, actor),
            None => self.queued.push_back((index, queued)),
        }
    }

    /// Whether some submitted value's result has not been read yet.
    pub fn has_next(&self) -> bool {
        !self.results.is_empty() || !self.queued.is_empty()
    }

    /// Whether a value submitted now would start at once (an actor is free and nothing waits).
    pub fn has_free(&mut self) -> bool {
        self.reclaim();
        !self.idle.is_empty() && self.queued.is_empty()
    }

    /// Takes a free actor out of the pool, if one is free.
    pub fn pop_idle(&mut self) -> Option<ActorHandle<A>> {
        self.reclaim();
        if self.queued.is_empty() {
            self.idle.pop_front()
        } else {
            None
        }
    }

    /// Adds an actor to the pool; it takes the oldest waiting value at once, if any.
    pub fn push(&mut self, actor: ActorHandle<A>) {
        self.free(actor);
    }

    /// The result of the oldest submitted value not read yet, blocking until it is done;
    /// `None` when every result was read. A failed call is `Some(Err(..))`, and the pool
    /// goes on.
    pub fn get_next(&mut self) -> Option<Result<R>> {
        let index = self.oldest()?;
        Some(self.collect(index, None))
    }

    /// [`get_next`](Self::get_next) waiting at most `timeout`: an error of kind
    /// [`ErrorKind::Timeout`] when the result is not done by then, which stays to be read.
    pub fn get_next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        let index = self.oldest()?;
        Some(self.collect(index, Some(Instant::now() + timeout)))
    }

    /// The first result to be done among those not read yet, blocking until one is; `None`
    /// when every result was read.
    pub fn get_next_unordered(&mut self) -> Option<Result<R>> {
        self.collect_any(|_| true, None)
    }

    /// [`get_next_unordered`](Self::get_next_unordered) waiting at most `timeout` (an error of
    /// kind [`ErrorKind::Timeout`] when none is done by then).
    pub fn get_next_unordered_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.collect_any(|_| true, Some(Instant::now() + timeout))
    }

    /// Submits every value of `values` with `call` and returns their results in the order of
    /// `values`. Results of values submitted earlier stay in the pool for
    /// [`get_next`](Self::get_next).
    pub fn map<V, F>(
        &mut self,
        call: F,
        values: impl IntoIterator<Item = V>,
    ) -> impl Iterator<Item = Result<R>> + '_
    where
        F: Fn(&ActorHandle<A>, V) -> ObjectRef<R> + Clone + Send + 'static,
        V: Send + 'static,
    {
        let submitted = self.submit_all(call, values);
        submitted.map(move |index| self.collect(index, None))
    }

    /// Submits every value of `values` with `call` and returns their results as they are done.
    pub fn map_unordered<V, F>(
        &mut self,
        call: F,
        values: impl IntoIterator<Item = V>,
    ) -> impl Iterator<Item = Result<R>> + '_
    where
        F: Fn(&ActorHandle<A>, V) -> ObjectRef<R> + Clone + Send + 'static,
        V: Send + 'static,
    {
        let submitted = self.submit_all(call, values);
        let mut left = submitted.end - submitted.start;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            self.collect_any(|index| submitted.contains(&index), None)
        })
    }

    /// Submits every value of `values` with `call`; the indices they got.
    fn submit_all<V, F>(&mut self, call: F, values: impl IntoIterator<Item = V>) -> Range<u64>
    where
        F: Fn(&ActorHandle<A>, V) -> ObjectRef<R> + Clone + Send + 'static,
        V: Send + 'static,
    {
        let first = self.next_index;
        for value in values {
            self.submit(call.clone(), value);
        }
        first..self.next_index
    }

    /// Makes the call of value `index` on `actor`.
    fn start(&mut self, index: u64, call: Queued<A, R>, actor: ActorHandle<A>) {
        let result = call(&actor);
        self.results.insert(index, result.clone());
        self.busy.push((result, actor));
    }

    /// Gives `actor` the oldest waiting value, or makes it idle.
    fn free(&mut self, actor: ActorHandle<A>) {
        match self.queued.pop_front() {
            Some((index, call)) => self.start(index, call, actor),
            None => self.idle.push_back(actor),
        }
    }

    /// Frees the actors whose calls are done.
    fn reclaim(&mut self) {
        let mut i = 0;
        while i < self.busy.len() {
            if self.busy[i].0.is_ready() {
                let (_, actor) = self.busy.swap_remove(i);
                self.free(actor);
            } else {
                i += 1;
            }
        }
    }

    /// The index of the oldest value whose result was not read.
    fn oldest(&self) -> Option<u64> {
        let made = self.results.keys().next().copied();
        let waiting = self.queued.front().map(|(index, _)| *index);
        made.into_iter().chain(waiting).min()
    }

    /// Blocks until some call in flight is done (and its actor freed) or `deadline` passes;
    /// false on the deadline. An error when nothing is in flight that could make progress.
    fn progress(&mut self, deadline: Option<Instant>) -> Result<bool> {
        if self.busy.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "the actor pool has values waiting but no actors to run them: push one",
            ));
        }
        let refs: Vec<ObjectRef<R>> = self.busy.iter().map(|(r, _)| r.clone()).collect();
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let (ready, _) = wait(&refs, 1, timeout);
        self.reclaim();
        Ok(!ready.is_empty())
    }

    /// The result of value `index`, once its call was made and is done.
    fn collect(&mut self, index: u64, deadline: Option<Instant>) -> Result<R> {
        loop {
            self.reclaim();
            if let Some(result) = self.results.get(&index) {
                let value = match deadline {
                    None => get(result),
                    Some(d) => get_timeout(result, d.saturating_duration_since(Instant::now())),
                };
                if !matches!(&value, Err(e) if e.kind() == ErrorKind::Timeout) {
                    self.results.remove(&index);
                    self.reclaim();
                }
                return value;
            }
            // Still waiting for an actor: wait for one to be free.
            if !self.progress(deadline)? {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "the actor pool's result was not ready in time",
                ));
            }
        }
    }

    /// The result of the first value to be done among those `wanted`, lowest index first
    /// among those done at once; `None` when no wanted value is left.
    fn collect_any(
        &mut self,
        wanted: impl Fn(u64) -> bool,
        deadline: Option<Instant>,
    ) -> Option<Result<R>> {
        loop {
            self.reclaim();
            let done = self
                .results
                .iter()
                .find(|(index, r)| wanted(**index) && r.is_ready())
                .map(|(index, _)| *index);
            if let Some(index) = done {
                let result = self.results.remove(&index).expect("found above");
                return Some(get(&result));
            }
            let left = self.results.keys().any(|i| wanted(*i))
                || self.queued.iter().any(|(i, _)| wanted(*i));
            if !left {
                return None;
            }
            match self.progress(deadline) {
                Ok(true) => {}
                Ok(false) => {
                    return Some(Err(Error::new(
                        ErrorKind::Timeout,
                        "no result of the actor pool was ready in time",
                    )))
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<A: ActorMethods, R> fmt::Debug for ActorPool<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorPool")
            .field("idle", &self.idle.len())
            .field("busy", &self.busy.len())
            .field("unread", &self.results.len())
            .field("queued", &self.queued.len())
            .finish()
    }
}
