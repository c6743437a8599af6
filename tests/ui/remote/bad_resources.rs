#[raykit::remote(resources(custom = "one"))]
fn a() {}

#[raykit::remote(resources(CPU = 1))]
fn b() {}

#[raykit::remote(resources(my::gpu = 1))]
fn c() {}

#[raykit::remote(resources(custom = 1, custom = 2))]
fn d() {}

#[raykit::remote(resources(custom))]
fn e() {}

#[raykit::remote(resources(custom = 1.0e999))]
fn f() {}

fn main() {}
