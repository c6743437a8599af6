//! Runtime configuration: the resources this node declares and where to connect.

use std::collections::BTreeMap;

/// How [`init_with`](crate::init_with) starts the runtime.
///
/// ```
/// let config = raykit::Config::default().num_cpus(4).num_gpus(1).resource("custom", 2.0);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub(crate) num_cpus: Option<f64>,
    pub(crate) num_gpus: f64,
    pub(crate) resources: BTreeMap<String, f64>,
    pub(crate) address: Option<String>,
    pub(crate) namespace: Option<String>,
}

impl Config {
    /// The default configuration: every core of the machine, no GPUs, no custom resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many CPUs tasks may use at once (default: the machine's cores). Fractions are allowed.
    pub fn num_cpus(mut self, n: impl Into<f64>) -> Self {
        self.num_cpus = Some(n.into());
        self
    }

    /// How many GPUs this node declares (default 0).
    pub fn num_gpus(mut self, n: impl Into<f64>) -> Self {
        self.num_gpus = n.into();
        self
    }

    /// Declares `amount` of the custom resource `name`.
    pub fn resource(mut self, name: impl Into<String>, amount: impl Into<f64>) -> Self {
        self.resources.insert(name.into(), amount.into());
        self
    }

    /// The cluster to join (`HOST:PORT`). Unset, and with `RAYKIT_ADDRESS` unset, the runtime is
    /// embedded in this process.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The namespace of this job's named actors (Ray's namespaces): [`get_actor`](crate::get_actor)
    /// finds, and [`ActorOptions::name`](crate::ActorOptions::name) registers, names in it.
    /// Unset, the job gets an anonymous namespace of its own, so jobs do not see each other's
    /// names; jobs that set the same namespace share theirs.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Whether any resource setting was made (they describe an embedded node only).
    pub(crate) fn declares_resources(&self) -> bool {
        self.num_cpus.is_some() || self.num_gpus != 0.0 || !self.resources.is_empty()
    }

    /// The CPUs this configuration declares, resolving the default to the machine's cores.
    pub(crate) fn cpus(&self) -> f64 {
        self.num_cpus.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() as f64)
                .unwrap_or(1.0)
        })
    }
}
