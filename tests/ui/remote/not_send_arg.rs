use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

/// Serializable, but tied to the thread that made it.
#[derive(Serialize, Deserialize)]
struct Local {
    value: i64,
    _not_send: PhantomData<*const ()>,
}

#[raykit::remote]
fn read(local: Local) -> i64 {
    local.value
}

fn main() {}
