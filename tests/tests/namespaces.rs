//! Named actors in namespaces (Ray's namespaces): a name is registered in the job's namespace
//! (`Config::namespace`, here `tests`) or the one `ActorOptions::namespace` gives; `get_actor`
//! looks in the job's, `get_actor_in` in any; the same name may live in two namespaces;
//! `list_named_actors` lists every live name with its namespace; tasks and actors see their
//! job's namespace; a killed actor gives its name back in its namespace only.

use raykit::{ActorHandle, ActorOptions, ErrorKind};
use raykit_tests::{eventually, unique_id, within};

raykit_tests::suite!(Shape::cpus(2).namespace("tests"));

#[derive(raykit::Actor)]
struct Svc {
    tag: String,
}

#[raykit::actor]
impl Svc {
    pub fn new(tag: String) -> Self {
        Svc { tag }
    }

    pub fn tag(&self) -> String {
        self.tag.clone()
    }
}

/// A fresh actor name for one test.
fn fresh(what: &str) -> String {
    format!("{what}-{}", unique_id())
}

/// Finds `name` in the job's namespace from inside a task and returns its tag.
#[raykit::remote]
fn tag_of(name: String) -> String {
    let svc: ActorHandle<Svc> =
        raykit::get_actor(&name).expect("the job's namespace is the driver's");
    raykit::get(&svc.tag()).unwrap()
}

/// Finds `name` in `namespace` from inside a task.
#[raykit::remote]
fn tag_in(name: String, namespace: String) -> Result<String, String> {
    match raykit::get_actor_in::<Svc>(&name, &namespace) {
        Ok(svc) => Ok(raykit::get(&svc.tag()).unwrap()),
        Err(e) => Err(format!("{:?}: {e}", e.kind())),
    }
}

#[test]
fn names_live_in_the_jobs_namespace_unless_another_is_given() {
    init();
    within(120, || {
        let name = fresh("svc");
        let here = Svc::options(ActorOptions::new().name(&name)).remote("job".to_string());
        let prod = Svc::options(ActorOptions::new().name(&name).namespace("prod"))
            .remote("prod".to_string());
        raykit::get(&here.tag()).unwrap();
        raykit::get(&prod.tag()).unwrap();
        // The same name in two namespaces: two actors.
        let found: ActorHandle<Svc> = raykit::get_actor(&name).unwrap();
        assert_eq!(raykit::get(&found.tag()).unwrap(), "job");
        let found: ActorHandle<Svc> = raykit::get_actor_in(&name, "tests").unwrap();
        assert_eq!(raykit::get(&found.tag()).unwrap(), "job");
        let found: ActorHandle<Svc> = raykit::get_actor_in(&name, "prod").unwrap();
        assert_eq!(raykit::get(&found.tag()).unwrap(), "prod");
        let err = raykit::get_actor_in::<Svc>(&name, "staging").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ActorNotFound, "{err:?}");
        assert!(err.to_string().contains("staging"), "{err}");
        let listed = raykit::list_named_actors();
        assert!(
            listed.contains(&("tests".to_owned(), name.clone())),
            "{listed:?}"
        );
        assert!(
            listed.contains(&("prod".to_owned(), name.clone())),
            "{listed:?}"
        );
        // A second actor under a name taken in that namespace is dead on arrival.
        let twin = Svc::options(ActorOptions::new().name(&name).namespace("prod"))
            .remote("twin".to_string());
        let err = raykit::get(&twin.tag()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ActorDied, "{err:?}");
        here.kill();
        prod.kill();
    });
}

#[test]
fn tasks_see_their_jobs_namespace() {
    init();
    within(120, || {
        let name = fresh("svc");
        let svc = Svc::options(ActorOptions::new().name(&name)).remote("seen".to_string());
        raykit::get(&svc.tag()).unwrap();
        assert_eq!(raykit::get(&tag_of::remote(name.clone())).unwrap(), "seen");
        let other = fresh("svc");
        let elsewhere = Svc::options(ActorOptions::new().name(&other).namespace("far"))
            .remote("far".to_string());
        raykit::get(&elsewhere.tag()).unwrap();
        let found = raykit::get(&tag_in::remote(other.clone(), "far".to_string())).unwrap();
        assert_eq!(found.as_deref(), Ok("far"));
        let missing = raykit::get(&tag_in::remote(other.clone(), "tests".to_string())).unwrap();
        assert!(missing.unwrap_err().starts_with("ActorNotFound"));
        svc.kill();
        elsewhere.kill();
    });
}

#[test]
fn a_killed_actor_gives_its_name_back_in_its_namespace_only() {
    init();
    within(120, || {
        let name = fresh("svc");
        let first =
            Svc::options(ActorOptions::new().name(&name).namespace("a")).remote("1".to_string());
        let other =
            Svc::options(ActorOptions::new().name(&name).namespace("b")).remote("b".to_string());
        raykit::get(&first.tag()).unwrap();
        raykit::get(&other.tag()).unwrap();
        first.kill();
        // The kill reaches the directory asynchronously on a cluster: wait for the name to go.
        eventually(30, "the killed actor's name is free", || {
            raykit::get_actor_in::<Svc>(&name, "a").is_err()
        });
        let listed = raykit::list_named_actors();
        assert!(
            !listed.contains(&("a".to_owned(), name.clone())),
            "{listed:?}"
        );
        assert!(
            listed.contains(&("b".to_owned(), name.clone())),
            "{listed:?}"
        );
        let second =
            Svc::options(ActorOptions::new().name(&name).namespace("a")).remote("2".to_string());
        let found: ActorHandle<Svc> = raykit::get_actor_in(&name, "a").unwrap();
        assert_eq!(raykit::get(&found.tag()).unwrap(), "2");
        second.kill();
        other.kill();
    });
}
