//! A driver program for `tests/tests/cluster_logs.rs`: a task and an actor method that print
//! to stdout and stderr. It prints what the test needs to find their lines: the pid and node
//! of the worker processes that ran them.

use std::process::ExitCode;

/// Prints one line to stdout and one to stderr; returns where it ran.
#[raykit::remote]
fn shout(word: String) -> (u32, String) {
    println!("shout-out {word}");
    eprintln!("shout-err {word}");
    (std::process::id(), raykit::node_id().to_string())
}

/// Prints `n` numbered lines of about 100 bytes; returns where it ran.
#[raykit::remote]
fn flood(n: u32) -> (u32, String) {
    for i in 0..n {
        println!("flood {i:06} {}", "x".repeat(86));
    }
    (std::process::id(), raykit::node_id().to_string())
}

/// An actor whose method prints.
#[derive(raykit::Actor)]
struct Speaker {
    greeting: String,
}

#[raykit::actor]
impl Speaker {
    pub fn new(greeting: String) -> Self {
        Speaker { greeting }
    }

    /// Prints one line to stdout and one to stderr; returns where it ran.
    pub fn say(&self, word: String) -> (u32, String) {
        println!("speaker-out {} {word}", self.greeting);
        eprintln!("speaker-err {} {word}", self.greeting);
        (std::process::id(), raykit::node_id().to_string())
    }
}

fn run(args: &[String]) -> raykit::Result<()> {
    raykit::init()?;
    match args.first().map(String::as_str) {
        // `speak WORD`: the task and the actor method print WORD.
        Some("speak") => {
            let word = args.get(1).cloned().unwrap_or_default();
            let (pid, node) = raykit::get(&shout::remote(word.clone()))?;
            println!("task {pid} {node}");
            let speaker = Speaker::remote("hello".to_owned());
            let (pid, node) = raykit::get(&speaker.say(word))?;
            println!("actor {pid} {node}");
        }
        // `flood N`: a task prints N lines.
        Some("flood") => {
            let n = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
            let (pid, node) = raykit::get(&flood::remote(n))?;
            println!("task {pid} {node}");
        }
        other => eprintln!("unknown scenario {other:?}"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
