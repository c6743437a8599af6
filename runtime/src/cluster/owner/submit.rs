//! Task submission: a task's arguments and outputs sent to the head, which reports the
//! outputs; and, in a worker, the head told when the running task blocks and goes on.

use std::sync::Arc;

use super::{current, Client};
use crate::cluster::proto::{Message, TaskId, TaskSubmission, WireArg};
use crate::error::{Error, Result};
use crate::object::Slot;
use crate::resources::Amount;
use crate::task::{TaskOptions, TaskSpec};

/// Submits a task to the cluster: its outputs are filled when the head reports them.
pub(crate) fn submit(
    client: &Client,
    spec: &'static TaskSpec,
    options: Option<TaskOptions>,
    wire: Vec<Result<WireArg>>,
    outputs: Vec<Arc<Slot>>,
) {
    let fail = |e: Error| outputs.iter().for_each(|s| s.fail(e.clone()));
    let args = match wire.into_iter().collect::<Result<Vec<_>>>() {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let mut task = client.task(
        spec.name,
        spec.signature_hash,
        args,
        &outputs,
        TaskOptions::resources_for(options.as_ref(), spec),
        TaskOptions::retries_for(options.as_ref(), spec),
    );
    if let Some(e) = client.infeasible(&task) {
        return fail(e);
    }
    if client.named_functions.lock().insert(spec.name) {
        task.arg_names = Some(Box::new(
            spec.params.iter().map(|p| (*p).to_owned()).collect(),
        ));
    }
    client.submit(Message::SubmitTask(task), &outputs);
}

impl Client {
    /// A task submission of `function` whose outputs are `outputs`.
    pub(super) fn task(
        &self,
        function: &str,
        signature_hash: u64,
        args: Vec<WireArg>,
        outputs: &[Arc<Slot>],
        resources: std::collections::BTreeMap<String, f64>,
        max_retries: u32,
    ) -> TaskSubmission {
        TaskSubmission {
            task_id: TaskId::next(),
            job_id: self.job_id,
            function: function.to_owned(),
            signature_hash,
            args,
            outputs: outputs.iter().map(|s| s.id()).collect(),
            resources,
            max_retries,
            arg_names: None,
        }
    }

    /// Why no alive node could ever run `task`, by the head's last word on the nodes (a node
    /// that joined a moment ago may not be in it yet); `None` when one could or the nodes are
    /// not known. The words are the head's own (`resources::infeasible_on`).
    fn infeasible(&self, task: &TaskSubmission) -> Option<Error> {
        let totals = self.node_totals.read();
        if totals.is_empty() {
            return None;
        }
        // The common case without allocating: some node declares enough of everything. An
        // amount that is not a valid one is left to the slow path (and the head) to report.
        let fits = |total: &std::collections::BTreeMap<String, i64>| {
            task.resources.iter().all(|(name, amount)| {
                let units = Amount::from_f64(*amount).units();
                amount.is_finite() && (units <= 0 || total.get(name).is_some_and(|t| *t >= units))
            })
        };
        if totals.iter().any(fits) {
            return None;
        }
        let what = format!("`{}`", task.function);
        let demand = match crate::resources::units_of(&what, &task.resources) {
            Ok(d) => d,
            Err(e) => return Some(e),
        };
        crate::resources::infeasible_on(&task.function, &demand, totals.iter())
    }

    /// Sends a submission whose outputs the head reports: this program owns them and waits
    /// for them; they fail when the head cannot be told.
    pub(super) fn submit(&self, msg: Message, outputs: &[Arc<Slot>]) {
        for slot in outputs {
            slot.set_owned_elsewhere();
            self.await_object(slot);
        }
        if let Err(e) = self.send(msg) {
            self.awaited
                .lock()
                .retain(|id, _| !outputs.iter().any(|s| s.id() == *id));
            outputs.iter().for_each(|s| s.fail(e.clone()));
        }
    }
}

/// In a worker, tells the head the running task blocks (so its CPU can be lent). Returns the
/// task to report as unblocked afterwards.
pub(crate) fn task_blocked() -> Option<(Arc<Client>, TaskId)> {
    let task_id = crate::cluster::worker::current_task()?;
    let client = current()?;
    client.send(Message::TaskBlocked { task_id }).ok()?;
    Some((client, task_id))
}

/// In a worker, tells the head the blocked task goes on.
pub(crate) fn task_unblocked(blocked: Option<(Arc<Client>, TaskId)>) {
    if let Some((client, task_id)) = blocked {
        let _ = client.send(Message::TaskUnblocked { task_id });
    }
}
