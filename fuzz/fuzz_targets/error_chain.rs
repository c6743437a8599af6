//! An error's wire form (a flat list of links), as it arrives inside `Failed`,
//! `ObjectFailed`, `TaskResult`, `ActorStarted`, `ActorHosted` and `TaskFinished` messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(e) = postcard::from_bytes::<raykit::Error>(bytes) {
        raykit_fuzz::check_error(&e);
    }
});
