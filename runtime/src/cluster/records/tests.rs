//! Tests of the records: owners told from later processes with the same pid, the sweep, and
//! address matching.

use std::fs;
use std::path::Path;

use super::files::write_json_in;
use super::*;

/// Above the kernel's largest pid (2^22): never a running process.
const DEAD: u32 = 4_194_305;

/// A process that runs until dropped.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("start sleep"),
        )
    }

    fn owner(&self) -> Owner {
        let pid = self.0.id();
        Owner {
            pid,
            exe: fs::read_link(format!("/proc/{pid}/exe")).ok(),
            started: process_start_time(pid),
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raykit-records-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn node(n: u64) -> String {
    format!("node-{n:016x}")
}

fn record(home: &Path, file: &str, owner: &Owner, node_id: &str, cluster: &str) {
    let r = DaemonRecord {
        pid: owner.pid,
        head: false,
        node_id: node_id.to_owned(),
        listen: "127.0.0.1:9".into(),
        advertised: None,
        cluster: cluster.into(),
        token: "t".into(),
        exe: owner.exe.clone(),
        log: None,
        started: owner.started,
    };
    write_json_in(&home.join("daemons").join(file), &r).unwrap();
}

/// A per-daemon directory with an executable of `bytes` bytes and, if given, an owner.
/// Returns the bytes of its files.
fn daemon_dir(home: &Path, name: &str, owner: Option<&Owner>, bytes: usize) -> u64 {
    let dir = home.join(name);
    fs::create_dir_all(dir.join("exe")).unwrap();
    fs::write(dir.join("exe").join("f".repeat(64)), vec![1u8; bytes]).unwrap();
    let mut total = bytes as u64;
    if let Some(owner) = owner {
        write_json_in(&dir.join(OWNER_FILE), owner).unwrap();
        total += fs::metadata(dir.join(OWNER_FILE)).unwrap().len();
    }
    total
}

fn cluster(home: &Path, address: &str) {
    let c = ClusterRecord {
        address: address.into(),
        token: "t".into(),
    };
    write_json_in(&home.join("cluster.json"), &c).unwrap();
}

#[test]
fn a_process_is_told_from_a_later_one_with_the_same_pid() {
    let sleeper = Sleeper::start();
    let owner = sleeper.owner();
    assert!(owner.started.is_some());
    assert!(owner.runs());
    let later = Owner {
        started: owner.started.map(|s| s + 1),
        ..owner.clone()
    };
    assert!(!later.runs(), "another start time: another process");
    let other_exe = Owner {
        exe: Some(PathBuf::from("/not/this/program")),
        ..owner.clone()
    };
    assert!(!other_exe.runs());
    let old_record = Owner {
        started: None,
        ..owner.clone()
    };
    assert!(
        old_record.runs(),
        "records without a start time go by pid and exe"
    );
    assert!(!Owner {
        pid: DEAD,
        exe: None,
        started: None
    }
    .runs());
    drop(sleeper);
    assert!(!owner.runs());
}

#[test]
fn the_sweep_removes_what_daemons_that_are_gone_left_and_nothing_of_running_ones() {
    let home = scratch("sweep");
    let live = Sleeper::start();
    let live_owner = live.owner();
    let dead = Owner {
        pid: DEAD,
        exe: Some(PathBuf::from("/usr/bin/raykit")),
        started: Some(1),
    };
    let reused = Owner {
        started: live_owner.started.map(|s| s + 1),
        ..live_owner.clone()
    };
    let me = Owner::this_process();

    // Records: one dead, one of a process that reuses a live pid, one naming this very
    // process (which has not recorded itself: stale), one live.
    record(
        &home,
        &format!("{DEAD}.json"),
        &dead,
        &node(1),
        "127.0.0.1:1",
    );
    record(&home, "77.json", &reused, &node(3), "127.0.0.1:1");
    record(
        &home,
        &format!("{}.json", me.pid),
        &me,
        &node(7),
        "127.0.0.1:1",
    );
    let live_file = format!("{}.json", live_owner.pid);
    record(&home, &live_file, &live_owner, &node(2), "127.0.0.1:2");
    // Temporary files of a writer that is gone, and of one that runs.
    fs::write(home.join("daemons").join(format!("5.tmp{DEAD}")), b"{").unwrap();
    let running_tmp = format!("6.tmp{}", me.pid);
    fs::write(home.join("daemons").join(&running_tmp), b"{").unwrap();

    let mut removed = 0;
    // Named by a stale record, no owner file (an older version's).
    removed += daemon_dir(&home, &node(1), None, 1000);
    // Owned by processes that are gone.
    removed += daemon_dir(&home, &format!("head-{}", node(1)), Some(&dead), 24);
    removed += daemon_dir(&home, &node(5), Some(&dead), 10);
    removed += daemon_dir(&home, &node(3), Some(&reused), 10);
    // Kept: owned by a live process; the node of a live record (whatever its owner file
    // says); no owner and no record (a daemon creating it right now).
    daemon_dir(&home, &node(2), Some(&live_owner), 10);
    daemon_dir(&home, &format!("head-{}", node(2)), Some(&dead), 10);
    daemon_dir(&home, &node(4), None, 10);
    // Not a daemon's.
    fs::create_dir_all(home.join("logs")).unwrap();
    fs::create_dir_all(home.join("node-x")).unwrap();
    cluster(&home, "127.0.0.1:1");

    let swept = sweep_in(&home);
    assert_eq!(swept.records, 3, "{swept:?}");
    assert_eq!(swept.dirs, 4, "{swept:?}");
    assert_eq!(swept.bytes, removed);
    assert_eq!(swept.cluster.as_deref(), Some("127.0.0.1:1"));
    let mut left: Vec<String> = fs::read_dir(&home)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut want = vec![
        "daemons".to_owned(),
        format!("head-{}", node(2)),
        "logs".to_owned(),
        node(2),
        node(4),
        "node-x".to_owned(),
    ];
    want.sort();
    assert_eq!(left, want);
    let mut records: Vec<String> = fs::read_dir(home.join("daemons"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    records.sort();
    let mut want = vec![live_file, running_tmp];
    want.sort();
    assert_eq!(records, want);
    let text = swept.to_string();
    assert!(
        text.starts_with("removed 3 stale daemon records, 4 directories"),
        "{text}"
    );

    // Once clean, a second sweep finds nothing; the live cluster's record stays.
    cluster(&home, "127.0.0.1:2");
    let again = sweep_in(&home);
    assert!(again.is_empty(), "{again:?}");
    assert!(home.join("cluster.json").exists());

    // When the last daemon is gone, its directories and the cluster record go too.
    drop(live);
    let last = sweep_in(&home);
    assert_eq!((last.records, last.dirs), (1, 2), "{last:?}");
    assert_eq!(last.cluster.as_deref(), Some("127.0.0.1:2"));
    assert!(!home.join("cluster.json").exists());
    assert!(!home.join(node(2)).exists());
    let _ = fs::remove_dir_all(&home);
}

#[test]
fn addresses_match_by_text_or_by_what_they_resolve_to() {
    assert!(same_address("127.0.0.1:6380", "127.0.0.1:6380"));
    assert!(same_address("127.0.0.1:6380", "localhost:6380"));
    assert!(!same_address("127.0.0.1:6380", "127.0.0.1:6381"));
    assert!(!same_address("127.0.0.1:6380", "no such host"));
}
