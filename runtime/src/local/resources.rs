//! Resource accounting of one node: what it declares, what is free, what work asks for.
//!
//! Amounts are counted with atomics in fixed point (1/10,000 of a unit, as Ray does).

use super::*;

use crate::resources::{check_fits, Amount};

pub(super) const CPU: usize = 0;
pub(super) const GPU: usize = 1;

pub(super) fn shutdown_error() -> Error {
    Error::new(
        ErrorKind::Shutdown,
        "the raykit runtime was shut down before this task ran",
    )
}

pub(super) fn to_units(x: f64) -> u64 {
    Amount::from_f64(x).units().max(0) as u64
}

/// What a piece of work needs while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Demand {
    pub(super) cpu: u64,
    pub(super) gpu: u64,
    pub(super) custom: Box<[(usize, u64)]>,
}

impl Demand {
    pub(super) fn cpu_only(cpu: u64) -> Self {
        Demand {
            cpu,
            ..Demand::default()
        }
    }

    /// Whether the demand asks for nothing (such work never waits for resources).
    pub(crate) fn is_empty(&self) -> bool {
        self.cpu == 0 && self.gpu == 0 && self.custom.is_empty()
    }

    pub(super) fn parts(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        [(CPU, self.cpu), (GPU, self.gpu)]
            .into_iter()
            .chain(self.custom.iter().copied())
            .filter(|&(_, amount)| amount > 0)
    }
}

/// Names the work a resource request is for (`task `f``, `actor `A``); formatted only when
/// the request fails, so the hot path allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct What<'a>(pub(crate) &'static str, pub(crate) &'a str);

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.0, self.1)
    }
}

/// The resources a node declares and how much of each is free.
pub(crate) struct Resources {
    pub(super) names: Vec<String>,
    pub(super) total: Vec<u64>,
    pub(super) available: Vec<AtomicU64>,
}

impl Resources {
    pub(crate) fn new(cpus: f64, gpus: f64, custom: &BTreeMap<String, f64>) -> Result<Self> {
        let mut names = vec!["CPU".to_owned(), "GPU".to_owned()];
        let mut total = vec![to_units(cpus), to_units(gpus)];
        for (name, &amount) in custom {
            if name == "CPU" || name == "GPU" {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("`{name}` is not a custom resource: use num_cpus / num_gpus"),
                ));
            }
            names.push(name.clone());
            total.push(to_units(amount));
        }
        for (name, amount) in [("CPU", cpus), ("GPU", gpus)]
            .into_iter()
            .chain(custom.iter().map(|(n, a)| (n.as_str(), *a)))
        {
            if !amount.is_finite() || amount < 0.0 {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("resource `{name}` must be a finite amount >= 0, got {amount}"),
                ));
            }
        }
        let available = total.iter().map(|&t| AtomicU64::new(t)).collect();
        Ok(Resources {
            names,
            total,
            available,
        })
    }

    /// Turns amounts by name (see [`ResourceRequest::resolve`]) into a demand, failing when no
    /// node could ever satisfy it.
    pub(crate) fn demand_for(
        &self,
        what: &What<'_>,
        amounts: &BTreeMap<String, f64>,
    ) -> Result<Demand> {
        let get = |name: &str| amounts.get(name).copied().unwrap_or(0.0);
        let custom = amounts
            .iter()
            .filter(|(n, _)| *n != "CPU" && *n != "GPU")
            .map(|(n, a)| (n.as_str(), *a));
        self.demand(what, get("CPU"), get("GPU"), custom)
    }

    /// Turns a request into a demand, failing when no node could ever satisfy it.
    pub(crate) fn demand<'a>(
        &self,
        what: &What<'_>,
        cpus: f64,
        gpus: f64,
        custom: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<Demand> {
        let mut parts = Vec::new();
        let check = |name: &str, amount: f64| -> Result<Option<(usize, u64)>> {
            let want = Amount::parse(what, name, amount)?;
            if want == Amount::ZERO {
                return Ok(None);
            }
            let index = self.names.iter().position(|n| n == name);
            let most = index.map_or(Amount::ZERO, |i| Amount::from_units(self.total[i] as i64));
            check_fits(what, name, want, most)?;
            // `check_fits` passed, so the node declares the resource.
            Ok(index.map(|i| (i, want.units() as u64)))
        };
        let cpu = check("CPU", cpus)?.map_or(0, |p| p.1);
        let gpu = check("GPU", gpus)?.map_or(0, |p| p.1);
        for (name, amount) in custom {
            if let Some(part) = check(name, amount)? {
                parts.push(part);
            }
        }
        Ok(Demand {
            cpu,
            gpu,
            custom: parts.into_boxed_slice(),
        })
    }

    pub(super) fn try_acquire(&self, demand: &Demand) -> bool {
        for (taken, (index, amount)) in demand.parts().enumerate() {
            let ok = self.available[index]
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                    a.checked_sub(amount)
                })
                .is_ok();
            if !ok {
                for (i, a) in demand.parts().take(taken) {
                    self.available[i].fetch_add(a, Ordering::AcqRel);
                }
                return false;
            }
        }
        true
    }

    pub(super) fn release(&self, demand: &Demand) {
        for (index, amount) in demand.parts() {
            self.available[index].fetch_add(amount, Ordering::AcqRel);
        }
    }

    pub(super) fn view(&self, amounts: impl Fn(usize) -> u64) -> BTreeMap<String, f64> {
        self.names
            .iter()
            .enumerate()
            .filter(|&(i, _)| self.total[i] > 0)
            .map(|(i, name)| (name.clone(), Amount::from_units(amounts(i) as i64).as_f64()))
            .collect()
    }

    pub(crate) fn total_view(&self) -> BTreeMap<String, f64> {
        self.view(|i| self.total[i])
    }

    pub(crate) fn available_view(&self) -> BTreeMap<String, f64> {
        self.view(|i| self.available[i].load(Ordering::Acquire))
    }
}
