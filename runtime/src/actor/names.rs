//! Finding actors: the weak directory that lets a deserialized handle find its actor in this
//! process, and named actors ([`get_actor`]).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;

use super::{ActorHandle, ActorId, ActorMethods, HandleGuard, RawHandle};
use crate::backend::ActorLink;
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::{self};

/// Actors whose handles were serialized, by id, so a deserialized handle finds its actor.
/// Weak: it never keeps an actor alive.
pub(super) mod directory {
    use super::*;

    type Table = Mutex<HashMap<ActorId, Weak<dyn Any + Send + Sync>>>;

    fn table() -> &'static Table {
        static TABLE: OnceLock<Table> = OnceLock::new();
        TABLE.get_or_init(Default::default)
    }

    pub(in crate::actor) fn export<A: Send + Sync + 'static>(
        id: ActorId,
        guard: Arc<HandleGuard<A>>,
    ) {
        let any: Arc<dyn Any + Send + Sync> = guard;
        table()
            .lock()
            .entry(id)
            .or_insert_with(|| Arc::downgrade(&any));
    }

    pub(in crate::actor) fn find(id: ActorId) -> Option<Arc<dyn Any + Send + Sync>> {
        table().lock().get(&id).and_then(Weak::upgrade)
    }

    pub(in crate::actor) fn remove(id: ActorId) {
        let mut t = table().lock();
        if t.get(&id).is_some_and(|w| w.strong_count() == 0) {
            t.remove(&id);
        }
    }
}

/// A handle guard of some actor type, kept without knowing the type.
type AnyHandle = Arc<dyn Any + Send + Sync>;

/// The name of a named actor: a name within a namespace (Ray's namespaces).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ActorName {
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl std::fmt::Display for ActorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` in namespace `{}`", self.name, self.namespace)
    }
}

/// Named actors of one runtime. Holds a handle to each, so a named actor outlives its other
/// handles until it is killed.
#[derive(Default)]
pub(crate) struct NamedActors {
    by_name: Mutex<BTreeMap<ActorName, (ActorId, AnyHandle)>>,
}

impl NamedActors {
    pub(super) fn register<A: Send + Sync + 'static>(
        &self,
        name: &ActorName,
        guard: Arc<HandleGuard<A>>,
        id: ActorId,
    ) -> Result<()> {
        let mut names = self.by_name.lock();
        if names.contains_key(name) {
            return Err(Error::new(
                ErrorKind::ActorDied,
                format!("cannot create actor named {name}: another live actor has that name"),
            ));
        }
        names.insert(name.clone(), (id, guard));
        Ok(())
    }

    pub(super) fn unname(&self, name: &ActorName, id: ActorId) {
        let removed = {
            let mut names = self.by_name.lock();
            match names.get(name) {
                Some((i, _)) if *i == id => names.remove(name),
                _ => None,
            }
        };
        // Dropped outside the lock: the handle's drop may stop the actor.
        drop(removed);
    }

    pub(crate) fn clear(&self) {
        let all = std::mem::take(&mut *self.by_name.lock());
        drop(all);
    }

    pub(super) fn find(&self, name: &ActorName) -> Option<Arc<dyn Any + Send + Sync>> {
        self.by_name.lock().get(name).map(|(_, g)| g.clone())
    }

    pub(super) fn list(&self) -> Vec<(String, String)> {
        let names = self.by_name.lock();
        names
            .keys()
            .map(|n| (n.namespace.clone(), n.name.clone()))
            .collect()
    }
}

/// The handle of the live actor registered under `name` in this job's namespace (see
/// [`ActorOptions::name`](crate::ActorOptions::name) and
/// [`Config::namespace`](crate::Config::namespace)).
///
/// Fails with [`ActorNotFound`](ErrorKind::ActorNotFound) when no live actor has that name or
/// the actor under it is not an `A`.
pub fn get_actor<A: ActorMethods>(name: &str) -> Result<ActorHandle<A>> {
    let rt = runtime::current()?;
    let namespace = rt.namespace.clone();
    lookup(
        &rt,
        ActorName {
            namespace,
            name: name.to_owned(),
        },
    )
}

/// The handle of the live actor registered under `name` in `namespace`, as [`get_actor`] in
/// another namespace than the job's.
///
/// ```
/// #[derive(raykit::Actor)]
/// struct Svc;
///
/// #[raykit::actor]
/// impl Svc {
///     pub fn new() -> Self {
///         Svc
///     }
///     pub fn ping(&self) -> u8 {
///         1
///     }
/// }
///
/// let options = raykit::ActorOptions::new().name("svc").namespace("prod");
/// let _svc = Svc::options(options).remote();
/// let found: raykit::ActorHandle<Svc> = raykit::get_actor_in("svc", "prod").unwrap();
/// assert_eq!(raykit::get(&found.ping()).unwrap(), 1);
/// assert!(raykit::get_actor::<Svc>("svc").is_err()); // not in this job's namespace
/// assert!(raykit::list_named_actors().contains(&("prod".to_string(), "svc".to_string())));
/// ```
pub fn get_actor_in<A: ActorMethods>(name: &str, namespace: &str) -> Result<ActorHandle<A>> {
    let rt = runtime::current()?;
    lookup(
        &rt,
        ActorName {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        },
    )
}

/// Every live named actor as `(namespace, name)`, sorted, in every namespace (on a cluster:
/// the whole cluster's).
pub fn list_named_actors() -> Vec<(String, String)> {
    match runtime::current() {
        Ok(rt) => crate::backend::list_named_actors(&rt, || rt.actors.list()),
        Err(_) => Vec::new(),
    }
}

fn lookup<A: ActorMethods>(rt: &runtime::Runtime, name: ActorName) -> Result<ActorHandle<A>> {
    let here = || {
        let any = rt.actors.find(&name).ok_or_else(|| {
            Error::new(
                ErrorKind::ActorNotFound,
                format!("no live actor is named {name}"),
            )
        })?;
        let guard = any.downcast::<HandleGuard<A>>().map_err(|_| {
            Error::new(
                ErrorKind::ActorNotFound,
                format!(
                    "the actor named {name} is not a `{}`",
                    std::any::type_name::<A>()
                ),
            )
        })?;
        Ok(ActorLink::Here(guard))
    };
    let link = ActorLink::named(rt, &name, here)?;
    Ok(ActorHandle::from_raw(RawHandle { link }))
}
