//! A user value (an object, a task's argument or result, an actor call's) as every process
//! decodes it: the first byte picks the type (see `raykit_fuzz::values`), the rest is what a
//! peer sent. Postcard and MessagePack values, recursive types and `serde_json::Value`s
//! included: no input may panic, overflow the stack or allocate past what it holds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&selector, bytes)) = data.split_first() {
        raykit_fuzz::check_value(selector, bytes);
    }
});
