//! Compile-time checks of the macros (trybuild): every misuse that can be caught at compile
//! time fails with an error on the user's token (`ui/<topic>/*.rs` next to its `.stderr`), and
//! the `ui/pass` cases must compile. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p raykit-tests --test ui`, then read them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/remote/*.rs");
    t.compile_fail("ui/actors/*.rs");
    t.pass("ui/pass/*.rs");
}
