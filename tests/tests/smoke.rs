//! A first end-to-end check: chained refs, num_returns and an awaited async task.
use raykit::ObjectRef;

raykit_tests::suite!(Shape::machine());

#[raykit::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[raykit::remote(num_returns = 2)]
fn split(v: Vec<i64>) -> (Vec<i64>, Vec<i64>) {
    let r = v[v.len() / 2..].to_vec();
    (v[..v.len() / 2].to_vec(), r)
}

#[raykit::remote]
async fn aadd(a: i64, b: i64) -> i64 {
    a + b
}

#[test]
fn smoke() -> raykit::Result<()> {
    init();
    let a: ObjectRef<i64> = add::remote(1, 2);
    let b = add::remote(&a, 10);
    let c = add::remote(a.clone(), b);
    assert_eq!(raykit::get(&c)?, 16);
    let (l, r) = split::remote(vec![1, 2, 3, 4]);
    assert_eq!(raykit::get(&l)?, vec![1, 2]);
    assert_eq!(raykit::get(&r)?, vec![3, 4]);
    let d = aadd::remote(&c, 1);
    assert_eq!(futures::executor::block_on(d)?, 17);
    Ok(())
}
