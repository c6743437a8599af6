//! Resources as both backends count them: one fixed-point amount, what a call asks for, and one
//! feasibility check.
//!
//! Amounts are kept in fixed point, 1/10,000 of a unit as in Ray, so sums of fractional
//! requests (`num_cpus(0.1)` ten times) never drift. [`ResourceRequest`] is what options ask for
//! over the defaults written in code; [`Amount::parse`] checks one requested amount and
//! [`check_fits`] says why no node could ever provide it: the embedded scheduler asks it of its
//! one node, the cluster's head of the largest alive node for each resource, so the same request
//! fails with the same words in both modes.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// Fixed-point units in one unit of a resource.
pub(crate) const UNIT: i64 = 10_000;

/// An amount of one resource, in 1/10,000 of a unit (negative only for a change of a free
/// amount, such as a CPU taken back after it was lent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Amount(i64);

impl Amount {
    /// Nothing.
    pub(crate) const ZERO: Amount = Amount(0);

    /// `amount` units of a resource, rounded to the fixed point. Unchecked: see [`Amount::parse`].
    pub(crate) fn from_f64(amount: f64) -> Amount {
        Amount((amount * UNIT as f64).round() as i64)
    }

    /// The amount `units` of fixed point.
    pub(crate) const fn from_units(units: i64) -> Amount {
        Amount(units)
    }

    /// The amount of `name` that `what` asks for, which must be finite and not negative.
    pub(crate) fn parse(what: &dyn fmt::Display, name: &str, amount: f64) -> Result<Amount> {
        if !amount.is_finite() || amount < 0.0 {
            return Err(Error::new(
                ErrorKind::ResourceUnavailable,
                format!("{what} asks for {amount} of resource `{name}`: amounts must be finite and >= 0"),
            ));
        }
        Ok(Amount::from_f64(amount))
    }

    /// The amount in fixed-point units.
    pub(crate) const fn units(self) -> i64 {
        self.0
    }

    /// The amount in units of the resource.
    pub(crate) fn as_f64(self) -> f64 {
        self.0 as f64 / UNIT as f64
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

/// Whether a node with at most `most` of resource `name` could ever provide `want` of it for
/// `what`; the error says why not (no node declares it, or none declares that much).
pub(crate) fn check_fits(
    what: &dyn fmt::Display,
    name: &str,
    want: Amount,
    most: Amount,
) -> Result<()> {
    if want <= most {
        return Ok(());
    }
    let message = if most == Amount::ZERO {
        format!("{what} needs {want} of resource `{name}`, which no node declares")
    } else {
        format!("{what} needs {want} of resource `{name}`, but no node declares more than {most}")
    };
    Err(Error::new(ErrorKind::ResourceUnavailable, message))
}

/// A request by name in fixed-point units (zero amounts left out), each amount checked by
/// [`Amount::parse`] for `what`.
pub(crate) fn units_of(
    what: &dyn fmt::Display,
    request: &BTreeMap<String, f64>,
) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for (name, amount) in request {
        let units = Amount::parse(what, name, *amount)?.units();
        if units > 0 {
            out.insert(name.clone(), units);
        }
    }
    Ok(out)
}

/// Whether a node declaring `total` (in units) could ever hold `demand`.
pub(crate) fn fits(demand: &BTreeMap<String, i64>, total: &BTreeMap<String, i64>) -> bool {
    demand
        .iter()
        .all(|(r, amount)| total.get(r).copied().unwrap_or(0) >= *amount)
}

/// Why no node of `totals` (each node's declared resources, in units) could ever run
/// `function` asking for `demand`; `None` when one could. Asked by the head of its alive nodes
/// and by a cluster program of the head's last word on them, so both fail a request alike.
pub(crate) fn infeasible_on<'a>(
    function: &str,
    demand: &BTreeMap<String, i64>,
    totals: impl Iterator<Item = &'a BTreeMap<String, i64>> + Clone,
) -> Option<Error> {
    if demand.is_empty() || totals.clone().any(|total| fits(demand, total)) {
        return None;
    }
    let what = format!("`{function}`");
    let mut short = Vec::new();
    for (r, amount) in demand {
        let most = totals
            .clone()
            .map(|t| t.get(r).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let (want, most) = (Amount::from_units(*amount), Amount::from_units(most));
        if let Err(e) = check_fits(&what, r, want, most) {
            short.push(e.message().to_owned());
        }
    }
    let message = if short.is_empty() {
        let wants: Vec<String> = demand
            .iter()
            .map(|(r, a)| format!("{} `{r}`", Amount::from_units(*a)))
            .collect();
        format!(
            "`{function}` cannot run: no single alive node declares all of {}",
            wants.join(", ")
        )
    } else {
        short.join("; ")
    };
    Some(Error::new(ErrorKind::ResourceUnavailable, message))
}

/// What options ask for: CPUs, GPUs and custom resources over the defaults written in code
/// (`#[remote(..)]`, `#[actor(..)]`). Shared by task and actor options.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ResourceRequest {
    pub(crate) num_cpus: Option<f64>,
    pub(crate) num_gpus: Option<f64>,
    /// Custom amounts; each replaces the default amount of that name.
    pub(crate) custom: Vec<(String, f64)>,
}

impl ResourceRequest {
    /// Asks for `amount` of `name`, replacing an earlier amount of it.
    pub(crate) fn set_custom(&mut self, name: String, amount: f64) {
        self.custom.retain(|(n, _)| *n != name);
        self.custom.push((name, amount));
    }

    /// Every non-zero amount by name (`CPU`, `GPU`, custom names): these overrides over the
    /// defaults `cpus`, `gpus` and `custom`.
    pub(crate) fn resolve(
        request: Option<&ResourceRequest>,
        cpus: f64,
        gpus: f64,
        custom: &[(&str, f64)],
    ) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        out.insert(
            "CPU".to_owned(),
            request.and_then(|r| r.num_cpus).unwrap_or(cpus),
        );
        out.insert(
            "GPU".to_owned(),
            request.and_then(|r| r.num_gpus).unwrap_or(gpus),
        );
        for (name, amount) in custom {
            out.insert((*name).to_owned(), *amount);
        }
        for (name, amount) in request.map_or(&[][..], |r| &r.custom[..]) {
            out.insert(name.clone(), *amount);
        }
        out.retain(|_, a| *a != 0.0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_fixed_point_so_fractions_add_up_exactly() {
        let tenth = Amount::from_f64(0.1);
        let sum = (0..10).fold(0, |acc, _| acc + tenth.units());
        assert_eq!(Amount::from_units(sum), Amount::from_f64(1.0));
        assert_eq!(Amount::from_f64(2.5).to_string(), "2.5");
        assert_eq!(Amount::from_f64(0.5).units(), UNIT / 2);
    }

    #[test]
    fn bad_amounts_and_requests_no_node_could_hold_fail_with_the_reason() {
        let what = "task `f`";
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = Amount::parse(&what, "CPU", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ResourceUnavailable);
            assert!(e.message().contains("finite and >= 0"), "{e}");
        }
        let two = Amount::from_f64(2.0);
        assert!(check_fits(&what, "CPU", two, two).is_ok());
        let e = check_fits(&what, "custom", two, Amount::ZERO).unwrap_err();
        assert!(
            e.message().contains("`custom`, which no node declares"),
            "{e}"
        );
        let e = check_fits(&what, "CPU", Amount::from_f64(3.0), two).unwrap_err();
        assert!(e.message().contains("no node declares more than 2"), "{e}");
    }

    #[test]
    fn options_override_the_defaults_and_zero_amounts_are_left_out() {
        let mut r = ResourceRequest {
            num_cpus: Some(0.0),
            ..Default::default()
        };
        r.set_custom("custom".into(), 1.0);
        r.set_custom("custom".into(), 2.0);
        let out = ResourceRequest::resolve(Some(&r), 1.0, 0.0, &[("custom", 5.0), ("x", 1.0)]);
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            [("custom".to_owned(), 2.0), ("x".to_owned(), 1.0)]
        );
    }
}
