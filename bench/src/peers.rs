//! Rust actor frameworks doing `1:1 actor calls sync` and `1:1 actor calls async` (feature
//! `peers`): kameo, actix and ractor, each with an unbounded mailbox where it has a choice, the
//! caller on the benchmark's main thread as raykit's driver is.

use std::time::Duration;

use crate::harness::{timeit, Rate};
use crate::report::PeerRow;

/// The two metrics the peers run.
const SYNC: &str = "1_1_actor_calls_sync";
const ASYNC: &str = "1_1_actor_calls_async";

/// Runs every peer on the metrics `wanted` selects, each `repeat` times (the fastest kept).
pub fn run_all(d: Duration, repeat: u32, wanted: &dyn Fn(&str) -> bool) -> Vec<PeerRow> {
    let mut rows = Vec::new();
    type Peer = fn(Duration, bool) -> Result<Rate, String>;
    let peers: [(&str, Peer); 3] = [
        ("kameo", kameo_peer::run),
        ("actix", actix_peer::run),
        ("ractor", ractor_peer::run),
    ];
    for (framework, run) in peers {
        for (metric, batch) in [(SYNC, false), (ASYNC, true)] {
            if !wanted(metric) {
                continue;
            }
            eprint!("[peer] {framework:<8} {metric:<36} ");
            let rate = crate::harness::best_of(repeat, || run(d, batch));
            match &rate {
                Ok(r) => eprintln!("{:>14} /s", crate::report::fmt_rate(r.mean)),
                Err(e) => eprintln!("skipped: {e}"),
            }
            rows.push(PeerRow {
                framework: framework.to_owned(),
                metric: metric.to_owned(),
                rate,
            });
        }
    }
    rows
}

mod kameo_peer {
    use super::*;
    use kameo::actor::Spawn;
    use kameo::message::{Context, Message};

    #[derive(kameo::Actor)]
    struct Server;

    struct SmallValue;

    impl Message<SmallValue> for Server {
        type Reply = [u8; 2];

        async fn handle(&mut self, _: SmallValue, _: &mut Context<Self, Self::Reply>) -> [u8; 2] {
            *b"ok"
        }
    }

    pub(super) fn run(d: Duration, batch: bool) -> Result<Rate, String> {
        let rt = crate::limits::tokio_runtime();
        let actor = {
            let _enter = rt.enter();
            Server::spawn_with_mailbox(Server, kameo::mailbox::unbounded())
        };
        let rate = if batch {
            // `ask` sends when first polled: send all 1,000, then wait for the replies.
            timeit::<String>(d, 1000.0, || {
                rt.block_on(async {
                    let asks = (0..1000).map(|_| async { actor.ask(SmallValue).await });
                    for r in futures::future::join_all(asks).await {
                        r.map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })?
        } else {
            timeit::<String>(d, 1.0, || {
                rt.block_on(async { actor.ask(SmallValue).await })
                    .map(drop)
                    .map_err(|e| e.to_string())
            })?
        };
        Ok(rate)
    }
}

mod actix_peer {
    use super::*;
    use actix::{Actor, Addr, Context, Handler, Message, MessageResult};

    struct Server;

    impl Actor for Server {
        type Context = Context<Self>;
    }

    struct SmallValue;

    impl Message for SmallValue {
        type Result = [u8; 2];
    }

    impl Handler<SmallValue> for Server {
        type Result = MessageResult<SmallValue>;

        fn handle(&mut self, _: SmallValue, _: &mut Context<Self>) -> Self::Result {
            MessageResult(*b"ok")
        }
    }

    pub(super) fn run(d: Duration, batch: bool) -> Result<Rate, String> {
        // An actix system runs its actors on its own (single) thread.
        let (tx, rx) = std::sync::mpsc::channel::<(Addr<Server>, actix::System)>();
        let thread = std::thread::spawn(move || {
            let sys = actix::System::new();
            sys.block_on(async {
                let _ = tx.send((Server.start(), actix::System::current()));
            });
            sys.run()
        });
        let (addr, system) = rx
            .recv()
            .map_err(|_| "the actix system did not start".to_owned())?;
        // `send` queues the message at once; the returned future waits for the reply.
        let rate = if batch {
            timeit::<String>(d, 1000.0, || {
                let calls: Vec<_> = (0..1000).map(|_| addr.send(SmallValue)).collect();
                for c in calls {
                    futures::executor::block_on(c).map_err(|e| e.to_string())?;
                }
                Ok(())
            })
        } else {
            timeit::<String>(d, 1.0, || {
                futures::executor::block_on(addr.send(SmallValue))
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
        };
        system.stop();
        let _ = thread.join();
        rate
    }
}

mod ractor_peer {
    use super::*;
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

    struct Server;

    enum Msg {
        SmallValue(RpcReplyPort<[u8; 2]>),
    }

    impl Actor for Server {
        type Msg = Msg;
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }

        async fn handle(
            &self,
            _: ActorRef<Msg>,
            msg: Msg,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            match msg {
                Msg::SmallValue(reply) => {
                    let _ = reply.send(*b"ok");
                }
            }
            Ok(())
        }
    }

    pub(super) fn run(d: Duration, batch: bool) -> Result<Rate, String> {
        let rt = crate::limits::tokio_runtime();
        let (actor, handle) = rt
            .block_on(Actor::spawn(None, Server, ()))
            .map_err(|e| format!("cannot spawn: {e}"))?;
        let rate = if batch {
            timeit::<String>(d, 1000.0, || {
                rt.block_on(async {
                    let calls = (0..1000).map(|_| actor.call(Msg::SmallValue, None));
                    for r in futures::future::join_all(calls).await {
                        r.map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })?
        } else {
            timeit::<String>(d, 1.0, || {
                rt.block_on(actor.call(Msg::SmallValue, None))
                    .map(drop)
                    .map_err(|e| e.to_string())
            })?
        };
        actor.stop(None);
        let _ = rt.block_on(handle);
        Ok(rate)
    }
}
