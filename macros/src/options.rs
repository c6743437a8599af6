//! Parses the `key = value` options of `#[remote(..)]` and `#[actor(..)]`.
//!
//! Each macro says which keys it accepts; an unknown key lists the valid ones, a key given
//! twice or with a value of the wrong kind is an error on that token.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ExprUnary, Lit, Meta, Token, UnOp};

use crate::errors::Errors;

/// Every option a raykit macro knows, as written by the user.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) num_cpus: Option<f64>,
    pub(crate) num_gpus: Option<f64>,
    pub(crate) resources: Vec<(String, f64)>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) num_returns: Option<(usize, Span)>,
    pub(crate) max_restarts: Option<u32>,
    pub(crate) max_concurrency: Option<u32>,
}

/// Parses `tokens` (the inside of the attribute's parentheses), accepting only `allowed` keys.
pub(crate) fn parse(tokens: TokenStream, allowed: &[&str], errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            return options;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let path = meta.path();
        let Some(key) = path.get_ident().map(|i| i.to_string()) else {
            let written: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            errors.spanned(path, unknown_key_message(&written.join("::"), allowed));
            continue;
        };
        if !allowed.contains(&key.as_str()) {
            errors.spanned(path, unknown_key_message(&key, allowed));
            continue;
        }
        if seen.contains(&key) {
            errors.spanned(path, format!("`{key}` set twice"));
            continue;
        }
        seen.push(key.clone());
        match key.as_str() {
            "resources" => options.resources = parse_resources(&meta, errors),
            "num_cpus" | "num_gpus" => {
                let v = number_value(&meta, &key, errors);
                if key == "num_cpus" {
                    options.num_cpus = v;
                } else {
                    options.num_gpus = v;
                }
            }
            "num_returns" => {
                if let Some(n) = integer_value(&meta, &key, 1, errors) {
                    options.num_returns = Some((n as usize, value_span(&meta)));
                }
            }
            "max_retries" => options.max_retries = integer_value(&meta, &key, 0, errors),
            "max_restarts" => options.max_restarts = integer_value(&meta, &key, 0, errors),
            "max_concurrency" => options.max_concurrency = integer_value(&meta, &key, 1, errors),
            _ => unreachable!("key checked against the allowed list"),
        }
    }
    options
}

fn unknown_key_message(key: &str, allowed: &[&str]) -> String {
    let valid: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
    let last = key.rsplit("::").next().unwrap_or(key);
    let guess = allowed
        .iter()
        .map(|k| (edit_distance(last, k), k))
        .filter(|(d, k)| *d <= 2 || (last.len() >= 4 && k.contains(last)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    format!(
        "unknown option `{key}`{guess}; valid options are {}",
        valid.join(", ")
    )
}

/// Levenshtein distance, for "did you mean" on a misspelled key.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn value_span(meta: &Meta) -> Span {
    match meta {
        Meta::NameValue(nv) => syn::spanned::Spanned::span(&nv.value),
        _ => syn::spanned::Spanned::span(meta),
    }
}

/// The literal of `key = <literal>`, with an error when the value is of another form.
fn literal<'a>(meta: &'a Meta, key: &str, example: &str, errors: &mut Errors) -> Option<&'a Lit> {
    let Meta::NameValue(nv) = meta else {
        errors.spanned(meta, format!("`{key}` takes a value, like `{example}`"));
        return None;
    };
    match &nv.value {
        // syn reads `-1` as one negative literal.
        Expr::Lit(ExprLit {
            lit: lit @ (Lit::Int(_) | Lit::Float(_)),
            ..
        }) if lit.to_token_stream().to_string().starts_with('-') => {
            errors.spanned(lit, format!("`{key}` cannot be negative"));
            None
        }
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => {
            errors.spanned(&nv.value, format!("`{key}` cannot be negative"));
            None
        }
        other => {
            errors.spanned(other, format!("`{key}` takes a literal, like `{example}`"));
            None
        }
    }
}

fn number_value(meta: &Meta, key: &str, errors: &mut Errors) -> Option<f64> {
    let example = format!("{key} = 2` or `{key} = 0.5");
    let lit = literal(meta, key, &example, errors)?;
    let v = match lit {
        Lit::Int(i) => i.base10_parse::<u64>().map(|v| v as f64),
        Lit::Float(f) => f.base10_parse::<f64>(),
        other => {
            errors.spanned(other, format!("`{key}` takes a number, like `{example}`"));
            return None;
        }
    };
    match v {
        Ok(v) if v.is_finite() => Some(v),
        Ok(_) => {
            errors.spanned(lit, format!("`{key}` must be a finite number"));
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn integer_value(meta: &Meta, key: &str, min: u32, errors: &mut Errors) -> Option<u32> {
    let example = format!("{key} = {}", min.max(2));
    let lit = literal(meta, key, &example, errors)?;
    let Lit::Int(i) = lit else {
        errors.spanned(
            lit,
            format!("`{key}` takes a whole number, like `{example}`"),
        );
        return None;
    };
    match i.base10_parse::<u32>() {
        Ok(v) if v >= min => Some(v),
        Ok(_) => {
            errors.spanned(lit, format!("`{key}` must be at least {min}"));
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn parse_resources(meta: &Meta, errors: &mut Errors) -> Vec<(String, f64)> {
    let example = "resources(custom = 1)";
    let Meta::List(list) = meta else {
        errors.spanned(meta, format!("`resources` takes a list, like `{example}`"));
        return Vec::new();
    };
    let entries = match list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
        Ok(e) => e,
        Err(e) => {
            errors.push(e);
            return Vec::new();
        }
    };
    let mut out: Vec<(String, f64)> = Vec::new();
    for entry in entries {
        let Some(name) = entry.path().get_ident().map(|i| i.to_string()) else {
            errors.spanned(
                entry.path(),
                format!("a resource is named by one word, like `{example}`"),
            );
            continue;
        };
        if name == "CPU" || name == "GPU" {
            errors.spanned(
                entry.path(),
                "use `num_cpus` / `num_gpus` for CPUs and GPUs",
            );
            continue;
        }
        if out.iter().any(|(n, _)| *n == name) {
            errors.spanned(entry.path(), format!("resource `{name}` set twice"));
            continue;
        }
        if let Some(v) = number_value(&entry, &name, errors) {
            out.push((name, v));
        }
    }
    out
}
