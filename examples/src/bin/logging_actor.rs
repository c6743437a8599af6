//! Ports the `LoggingActor` of seed 000 ("Modern Parallel and Distributed Python"): four worker
//! tasks hold a handle to one logging actor and send it messages, while the driver reads the new
//! messages periodically with `read_new_logs`.
//!
//! Options: `--scale X` (or `RAYKIT_EXAMPLE_SCALE`) multiplies every sleep.

use std::time::Instant;

use raykit::ActorHandle;
use raykit_examples::{header, print_wall_time, sleep};

/// Keeps every log line and remembers how far the reader got.
#[derive(raykit::Actor)]
struct LoggingActor {
    logs: Vec<String>,
    counter: usize,
}

#[raykit::actor]
impl LoggingActor {
    /// No logs yet.
    pub fn new() -> Self {
        LoggingActor {
            logs: Vec::new(),
            counter: 0,
        }
    }

    /// Appends a message.
    pub fn add_log(&mut self, message: String) {
        self.logs.push(message);
    }

    /// The messages added since the last read.
    pub fn read_new_logs(&mut self) -> Vec<String> {
        let new_logs = self.logs[self.counter..].to_vec();
        self.counter = self.logs.len();
        new_logs
    }
}

/// Logs ten messages, one a second, through the handle it was given.
#[raykit::remote]
fn worker(logger: ActorHandle<LoggingActor>, i: u32) {
    for j in 0..10 {
        logger.add_log(format!("message {j} from worker {i}."));
        sleep(1.0);
    }
}

fn main() -> raykit::Result<()> {
    let start = Instant::now();
    header("logging_actor");
    raykit_examples::init(raykit::Config::default().num_cpus(4))?;

    let logger = LoggingActor::remote();
    let workers: Vec<_> = (0..4).map(|i| worker::remote(logger.clone(), i)).collect();

    let mut seen = 0;
    for _ in 0..10 {
        let new_logs = raykit::get(&logger.read_new_logs())?;
        seen += new_logs.len();
        println!("{new_logs:?}");
        sleep(0.5);
    }
    raykit::get_all(&workers)?;
    seen += raykit::get(&logger.read_new_logs())?.len();
    println!("messages read in total: {seen} (expected 40)");
    print_wall_time(start);
    Ok(())
}
