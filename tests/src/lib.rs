//! Integration tests of raykit live in `tests/`; this crate has no library code.
