//! A cluster with mutual TLS on every connection (`RAYKIT_TLS_CERT`, `RAYKIT_TLS_KEY`,
//! `RAYKIT_TLS_CA`): the same driver gives the same answers as embedded, with its tasks on both
//! nodes; a client without TLS, or with a certificate from another CA, is refused with a
//! reason that says so, and the cluster keeps serving. Only a cluster has connections to
//! encrypt. The settings are this test binary's environment, which every process it starts
//! inherits, so the binary holds this one test.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use raykit_tests::cluster::{Cluster, STEP, TOKEN};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

const CLI: &str = env!("CARGO_BIN_EXE_raykit-cli");
const DRIVER: &str = env!("CARGO_BIN_EXE_cluster_driver");

/// Writes a CA and one certificate it signed into `dir` as `ca.pem`, `cert.pem`, `key.pem`.
fn make_ca(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["raykit-node".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

fn tls_env(cmd: &mut Command, dir: &Path) {
    cmd.env("RAYKIT_TLS_CERT", dir.join("cert.pem"))
        .env("RAYKIT_TLS_KEY", dir.join("key.pem"))
        .env("RAYKIT_TLS_CA", dir.join("ca.pem"));
}

fn status(c: &Cluster, setup: impl FnOnce(&mut Command)) -> (bool, String) {
    let mut cmd = Command::new(CLI);
    cmd.args(["status", "--address", &c.address()])
        .env("RAYKIT_HOME", c.home())
        .env("RAYKIT_TOKEN", TOKEN)
        .stdin(Stdio::null());
    setup(&mut cmd);
    let out = cmd.output().expect("run raykit status");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_tls_cluster_runs_a_job_and_refuses_clients_without_its_ca() {
    let dir = std::env::temp_dir().join(format!("raykit-tls-{}", std::process::id()));
    let ours = dir.join("ours");
    let theirs = dir.join("theirs");
    make_ca(&ours);
    make_ca(&theirs);
    // Every process this test starts inherits these.
    std::env::set_var("RAYKIT_TLS_CERT", ours.join("cert.pem"));
    std::env::set_var("RAYKIT_TLS_KEY", ours.join("key.pem"));
    std::env::set_var("RAYKIT_TLS_CA", ours.join("ca.pem"));

    let embedded = Command::new(DRIVER)
        .arg("basic")
        .env_remove("RAYKIT_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .expect("run the driver embedded");
    assert!(embedded.status.success(), "{embedded:?}");
    let embedded = String::from_utf8_lossy(&embedded.stdout).into_owned();

    let mut c = Cluster::start("tls", CLI, DRIVER);
    assert_eq!(c.drive("basic", &["basic"]), embedded);
    let out = c.drive("spread", &["spread", "8"]);
    assert!(out.contains("nodes 2"), "tasks ran on both nodes: {out}");

    // Without TLS: refused, and told why.
    let (ok, out) = status(&c, |cmd| {
        cmd.env_remove("RAYKIT_TLS_CERT")
            .env_remove("RAYKIT_TLS_KEY")
            .env_remove("RAYKIT_TLS_CA");
    });
    assert!(!ok, "{out}");
    assert!(out.contains("RAYKIT_TLS_CERT"), "{out}");
    // With a certificate from another CA: refused by TLS.
    let (ok, out) = status(&c, |cmd| tls_env(cmd, &theirs));
    assert!(!ok, "{out}");
    assert!(out.contains("TLS with"), "{out}");
    // Half the settings: a configuration error.
    let (ok, out) = status(&c, |cmd| {
        cmd.env_remove("RAYKIT_TLS_CA");
    });
    assert!(!ok && out.contains("TLS needs all of"), "{out}");
    // The cluster still serves its own.
    let st = c.wait_for_status(STEP, |s| s.contains("nodes: 2 alive"));
    assert!(st.contains("0 waiting, 0 running"), "{st}");
    let _ = fs::remove_dir_all(&dir);
}
