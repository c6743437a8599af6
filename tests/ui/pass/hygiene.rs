//! The expansion names only absolute paths: it compiles in a crate without any prelude.
#![no_implicit_prelude]

#[::raykit::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[::raykit::remote(
    num_cpus = 0.5,
    num_gpus = 0,
    resources(custom = 1),
    max_retries = 1,
    num_returns = 2
)]
fn split(v: ::std::vec::Vec<i64>) -> (::std::vec::Vec<i64>, ::std::vec::Vec<i64>) {
    let right = ::std::borrow::ToOwned::to_owned(&v[v.len() / 2..]);
    let left = ::std::borrow::ToOwned::to_owned(&v[..v.len() / 2]);
    (left, right)
}

#[::raykit::remote]
async fn hello(name: ::std::string::String) -> ::std::string::String {
    ::std::format!("hello {name}")
}

#[::raykit::remote]
fn nothing() {}

/// A user type that is not `Clone`: copied for readers by serialization.
#[derive(::serde::Serialize, ::serde::Deserialize)]
struct Opaque(u8);

#[::raykit::remote]
fn opaque(o: Opaque) -> Opaque {
    o
}

fn main() {
    let a = add::remote(1, 2);
    let _b = add::remote(&a, ::core::clone::Clone::clone(&a));
    let (_l, _r) = split::remote(::std::vec![1, 2, 3]);
    let _h = hello::remote(::std::string::ToString::to_string("x"));
    let _n: ::raykit::ObjectRef<()> = nothing::remote();
    let _o = opaque::remote(Opaque(1));
    let _s = add::options(::raykit::TaskOptions::new().num_cpus(2)).remote(1, 2);
}
