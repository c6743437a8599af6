//! What a listener admits before any peer has proven the token: a cap on open connections, a
//! cap on connections whose peer has not spoken yet (a silent peer cannot hold a slot: the
//! oldest makes room for a new one; the daemon takes a peer out of the queue as soon as its
//! hello is in, and one whose hello is in when it is evicted still goes on), and a per-address budget of refused handshakes, after which that address
//! is refused at once until its budget refills. Refusals are logged individually only a few at a
//! time, then as a periodic summary, so a flood of wrong tokens cannot fill a disk.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Handshakes in progress at once; one more evicts the oldest.
pub const MAX_PENDING_HANDSHAKES: usize = 128;

/// Refused handshakes an address may have in a burst.
pub const REFUSAL_BURST: f64 = 20.0;

/// Refused handshakes per second an address may have in the long run.
pub const REFUSALS_PER_SECOND: f64 = 2.0;

/// Refusals logged one by one in each summary period; the rest are counted.
const LOGGED_PER_PERIOD: usize = 8;

/// Addresses whose budget is tracked at once; past this, full budgets are forgotten first.
const TRACKED_ADDRESSES: usize = 4096;

/// The environment variable that sets the summary period, in milliseconds (default 60 s).
pub const SUMMARY_ENV: &str = "RAYKIT_REFUSAL_SUMMARY_MS";

/// What a listener does with a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; the ticket holds its place among the open connections.
    Open(Ticket),
    /// Its address has refused handshakes beyond its budget: refuse it at once.
    RateLimited,
    /// Too many connections are open: close it.
    Full,
}

/// The admission policy of one listener.
#[derive(Debug)]
pub struct Gate {
    max_connections: usize,
    open: Arc<AtomicUsize>,
    pending: Mutex<Pending>,
    budgets: Mutex<HashMap<IpAddr, Budget>>,
    refusals: Mutex<Refusals>,
}

#[derive(Debug, Default)]
struct Pending {
    next: u64,
    slots: VecDeque<(u64, CancellationToken)>,
}

#[derive(Debug, Clone, Copy)]
struct Budget {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn refill(&mut self, now: Instant) {
        let gained = now.duration_since(self.at).as_secs_f64() * REFUSALS_PER_SECOND;
        self.tokens = (self.tokens + gained).min(REFUSAL_BURST);
        self.at = now;
    }
}

#[derive(Debug, Default)]
struct Refusals {
    logged: usize,
    by_address: BTreeMap<IpAddr, u64>,
    rate_limited: u64,
    full: u64,
    evicted: u64,
}

/// One open connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    open: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A handshake's slot: [`HandshakeSlot::evicted`] completes when a newer handshake took it.
#[derive(Debug)]
pub struct HandshakeSlot<'a> {
    gate: &'a Gate,
    id: u64,
    evicted: CancellationToken,
}

impl HandshakeSlot<'_> {
    /// Completes when the slot was given to a newer handshake.
    pub async fn evicted(&self) {
        self.evicted.cancelled().await
    }
}

impl Drop for HandshakeSlot<'_> {
    fn drop(&mut self) {
        let mut p = self.gate.pending.lock().expect("pending handshakes");
        p.slots.retain(|(id, _)| *id != self.id);
    }
}

impl Gate {
    /// A gate admitting at most `max_connections` open connections.
    pub fn new(max_connections: usize) -> Gate {
        Gate {
            max_connections,
            open: Arc::new(AtomicUsize::new(0)),
            pending: Mutex::default(),
            budgets: Mutex::default(),
            refusals: Mutex::default(),
        }
    }

    /// Decides what to do with a connection from `ip`.
    pub fn admit(&self, ip: IpAddr) -> Admission {
        let now = Instant::now();
        if let Some(b) = self.budgets.lock().expect("budgets").get_mut(&ip) {
            b.refill(now);
            if b.tokens < 1.0 {
                self.refusals.lock().expect("refusals").rate_limited += 1;
                return Admission::RateLimited;
            }
        }
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max_connections {
            self.open.fetch_sub(1, Ordering::Relaxed);
            self.refusals.lock().expect("refusals").full += 1;
            return Admission::Full;
        }
        Admission::Open(Ticket {
            open: self.open.clone(),
        })
    }

    /// A slot for one handshake, evicting the oldest when all are taken.
    pub fn handshake_slot(&self) -> HandshakeSlot<'_> {
        let evicted = CancellationToken::new();
        let mut p = self.pending.lock().expect("pending handshakes");
        while p.slots.len() >= MAX_PENDING_HANDSHAKES {
            if let Some((_, oldest)) = p.slots.pop_front() {
                oldest.cancel();
                self.refusals.lock().expect("refusals").evicted += 1;
            }
        }
        let id = p.next;
        p.next += 1;
        p.slots.push_back((id, evicted.clone()));
        HandshakeSlot {
            gate: self,
            id,
            evicted,
        }
    }

    /// Records a refused handshake from `ip`: spends one of its budget, and logs `why` while
    /// this period's individual lines last.
    pub fn refused(&self, ip: IpAddr, why: &dyn std::fmt::Display) {
        let now = Instant::now();
        {
            let mut budgets = self.budgets.lock().expect("budgets");
            if budgets.len() >= TRACKED_ADDRESSES && !budgets.contains_key(&ip) {
                budgets.retain(|_, b| {
                    b.refill(now);
                    b.tokens < REFUSAL_BURST
                });
            }
            if budgets.len() < TRACKED_ADDRESSES || budgets.contains_key(&ip) {
                let b = budgets.entry(ip).or_insert(Budget {
                    tokens: REFUSAL_BURST,
                    at: now,
                });
                b.refill(now);
                b.tokens = (b.tokens - 1.0).max(0.0);
            }
        }
        let mut r = self.refusals.lock().expect("refusals");
        *r.by_address.entry(ip).or_default() += 1;
        if r.logged < LOGGED_PER_PERIOD {
            r.logged += 1;
            tracing::warn!("{why}");
        }
    }

    /// What was refused since the last summary, as one line (`None` when nothing was); starts
    /// a new period.
    pub fn summary(&self) -> Option<String> {
        let r = std::mem::take(&mut *self.refusals.lock().expect("refusals"));
        let handshakes: u64 = r.by_address.values().sum();
        if handshakes == 0 && r.rate_limited == 0 && r.full == 0 && r.evicted == 0 {
            return None;
        }
        let mut top: Vec<_> = r.by_address.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = top
            .iter()
            .take(5)
            .map(|(ip, n)| format!("{ip} ({n})"))
            .collect();
        Some(format!(
            "refused {handshakes} handshakes from {} addresses{}; {} connections refused at once \
             for too many refusals, {} for too many open connections; {} silent handshakes evicted",
            r.by_address.len(),
            if top.is_empty() {
                String::new()
            } else {
                format!(" (most: {})", top.join(", "))
            },
            r.rate_limited,
            r.full,
            r.evicted
        ))
    }

    /// Logs [`Gate::summary`] every period until `shutdown`.
    pub async fn log_summaries(&self, shutdown: CancellationToken) {
        let period = std::env::var(SUMMARY_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(60), Duration::from_millis);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.cancelled() => return,
            }
            if let Some(line) = self.summary() {
                tracing::warn!("in the last {period:?}: {line}");
            }
        }
    }
}

/// How many connections a daemon may keep open: most of the file descriptors it may have
/// (after raising its soft limit to the hard one), leaving room for workers, files and its own
/// outgoing connections.
pub fn connection_cap() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 768;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    let fds = usize::try_from(lim.rlim_cur)
        .unwrap_or(usize::MAX)
        .min(1 << 20);
    (fds / 4 * 3).max(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_past_its_budget_is_refused_at_once_and_others_are_not() {
        let gate = Gate::new(1000);
        let bad: IpAddr = "10.0.0.1".parse().unwrap();
        let good: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..(REFUSAL_BURST as usize) {
            assert!(matches!(gate.admit(bad), Admission::Open(_)));
            gate.refused(bad, &"wrong token");
        }
        assert!(matches!(gate.admit(bad), Admission::RateLimited));
        assert!(matches!(gate.admit(good), Admission::Open(_)));
        let line = gate.summary().unwrap();
        assert!(
            line.contains("refused 20 handshakes from 1 addresses"),
            "{line}"
        );
        assert!(line.contains("1 connections refused at once"), "{line}");
        assert_eq!(gate.summary(), None, "a new period starts empty");
    }

    #[test]
    fn open_connections_are_capped_and_freed() {
        let gate = Gate::new(2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = gate.admit(ip);
        let _b = gate.admit(ip);
        assert!(matches!(gate.admit(ip), Admission::Full));
        drop(a);
        assert!(matches!(gate.admit(ip), Admission::Open(_)));
    }

    #[tokio::test]
    async fn the_oldest_handshake_makes_room_for_a_new_one() {
        let gate = Gate::new(1000);
        let first = gate.handshake_slot();
        let rest: Vec<_> = (1..MAX_PENDING_HANDSHAKES)
            .map(|_| gate.handshake_slot())
            .collect();
        let newest = gate.handshake_slot();
        tokio::time::timeout(Duration::from_secs(1), first.evicted())
            .await
            .expect("the oldest slot is evicted");
        assert!(!newest.evicted.is_cancelled());
        assert!(rest.iter().all(|s| !s.evicted.is_cancelled()));
    }
}
