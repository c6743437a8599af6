//! The cluster token a process is given: `RAYKIT_TOKEN`, or the file `RAYKIT_TOKEN_FILE`
//! names.

use std::fs;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// The token of a token file: its first line, without surrounding whitespace.
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read the token file {}: {e}", path.display()),
        )
    })?;
    match text.lines().next().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Ok(t.to_owned()),
        None => Err(Error::new(
            ErrorKind::Config,
            format!("the token file {} is empty", path.display()),
        )),
    }
}

/// The token this process was given: `RAYKIT_TOKEN`, else the file `RAYKIT_TOKEN_FILE` names.
pub fn env_token() -> Result<Option<String>> {
    if let Some(t) = std::env::var("RAYKIT_TOKEN").ok().filter(|t| !t.is_empty()) {
        return Ok(Some(t));
    }
    match std::env::var_os("RAYKIT_TOKEN_FILE").filter(|p| !p.is_empty()) {
        Some(path) => read_token_file(Path::new(&path)).map(Some),
        None => Ok(None),
    }
}
