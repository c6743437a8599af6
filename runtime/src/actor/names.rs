//! Finding actors: the weak directory that lets a deserialized handle find its actor in this
//! process, and named actors ([`get_actor`]).

use std::any::Any;
use std::collections::HashMap;
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

/// Named actors of one runtime. Holds a handle to each, so a named actor outlives its other
/// handles until it is killed.
#[derive(Default)]
pub(crate) struct NamedActors {
    by_name: Mutex<HashMap<String, (ActorId, AnyHandle)>>,
}

impl NamedActors {
    pub(super) fn register<A: Send + Sync + 'static>(
        &self,
        name: &str,
        guard: Arc<HandleGuard<A>>,
        id: ActorId,
    ) -> Result<()> {
        let mut names = self.by_name.lock();
        if names.contains_key(name) {
            return Err(Error::new(
                ErrorKind::ActorDied,
                format!("cannot create actor named `{name}`: another live actor has that name"),
            ));
        }
        names.insert(name.to_owned(), (id, guard));
        Ok(())
    }

    pub(super) fn unname(&self, name: &str, id: ActorId) {
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
        let all: Vec<_> = self.by_name.lock().drain().collect();
        drop(all);
    }

    pub(super) fn find(&self, name: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        self.by_name.lock().get(name).map(|(_, g)| g.clone())
    }
}

/// The handle of the live actor registered under `name` (see [`ActorOptions::name`]).
///
/// Fails with [`ActorNotFound`](ErrorKind::ActorNotFound) when no live actor has that name or
/// the actor under it is not an `A`.
pub fn get_actor<A: ActorMethods>(name: &str) -> Result<ActorHandle<A>> {
    let rt = runtime::current()?;
    let here = || {
        let any = rt.actors.find(name).ok_or_else(|| {
            Error::new(
                ErrorKind::ActorNotFound,
                format!("no live actor is named `{name}`"),
            )
        })?;
        let guard = any.downcast::<HandleGuard<A>>().map_err(|_| {
            Error::new(
                ErrorKind::ActorNotFound,
                format!(
                    "the actor named `{name}` is not a `{}`",
                    std::any::type_name::<A>()
                ),
            )
        })?;
        Ok(ActorLink::Here(guard))
    };
    let link = ActorLink::named(&rt, name, here)?;
    Ok(ActorHandle::from_raw(RawHandle { link }))
}
