//! Ports "Aggregate values for large computations" of seed 001 ("Perform Distributed Computing
//! easily using Ray in Python"): four `create_matrix` tasks feed two `multiply_matrices` tasks,
//! which feed one `sum_matrices`. The refs go straight from task to task: only the final `get`
//! blocks, at the root of the tree.
//!
//! Matrices are `Vec<f64>` in row-major order, `n x n` with `n = 200` (the seed uses 1000; use
//! `--size 1000` in a release build for the real thing). The same computation is then done
//! serially with plain calls, and both checksums (the sum of all entries) are printed: they are
//! equal to the last bit, because the tasks run exactly the same code on the same seeded data.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use raykit_examples::{arg, header, print_wall_time, speedup, timed};

/// Returns an `n x n` matrix of standard normal numbers (Box-Muller) drawn from `seed`.
#[raykit::remote]
fn create_matrix(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect()
}

/// The side of a square matrix stored in `len` entries.
fn side(len: usize) -> usize {
    let n = len.isqrt();
    assert_eq!(n * n, len, "not a square matrix: {len} entries");
    n
}

/// The matrix product `x . y` (`np.dot`).
#[raykit::remote]
fn multiply_matrices(x: Vec<f64>, y: Vec<f64>) -> Vec<f64> {
    let n = side(x.len());
    assert_eq!(x.len(), y.len(), "matrices of different sizes");
    let mut out = vec![0.0; n * n];
    // i-k-j order: the inner loop walks rows of `y` and `out` contiguously.
    for i in 0..n {
        let row = &mut out[i * n..(i + 1) * n];
        for k in 0..n {
            let a = x[i * n + k];
            for (o, b) in row.iter_mut().zip(&y[k * n..(k + 1) * n]) {
                *o += a * b;
            }
        }
    }
    out
}

/// The entrywise sum `x + y` (`np.add`).
#[raykit::remote]
fn sum_matrices(x: Vec<f64>, y: Vec<f64>) -> Vec<f64> {
    assert_eq!(x.len(), y.len(), "matrices of different sizes");
    x.iter().zip(&y).map(|(a, b)| a + b).collect()
}

fn checksum(m: &[f64]) -> f64 {
    m.iter().sum()
}

fn main() -> raykit::Result<()> {
    let start = std::time::Instant::now();
    header("matrix_tree");
    raykit::init()?;
    let n: usize = arg("size").unwrap_or(200);
    println!("matrices: {n} x {n}");

    let (tree, t_tasks) = timed(|| {
        let m1 = create_matrix::remote(n, 1);
        let m2 = create_matrix::remote(n, 2);
        let m3 = create_matrix::remote(n, 3);
        let m4 = create_matrix::remote(n, 4);

        let m12 = multiply_matrices::remote(m1, m2);
        let m34 = multiply_matrices::remote(m3, m4);

        let a12_34 = sum_matrices::remote(m12, m34);
        raykit::get(&a12_34)
    });
    let tree = tree?;

    let (serial, t_serial) = timed(|| {
        let m12 = multiply_matrices(create_matrix(n, 1), create_matrix(n, 2));
        let m34 = multiply_matrices(create_matrix(n, 3), create_matrix(n, 4));
        sum_matrices(m12, m34)
    });

    println!("checksum (tasks): {}", checksum(&tree));
    println!("checksum (serial): {}", checksum(&serial));
    println!("matrices equal: {}", tree == serial);
    println!("tasks:  {:.3} s", t_tasks.as_secs_f64());
    println!("serial: {:.3} s", t_serial.as_secs_f64());
    println!("speedup: {:.2}x", speedup(t_serial, t_tasks));
    raykit::shutdown();
    print_wall_time(start);
    Ok(())
}
