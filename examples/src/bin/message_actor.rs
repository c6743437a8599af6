//! Ports Ray's `MessageActor` (the actor example of Ray's documentation, in the spirit of
//! seed 000): three worker tasks push messages through one shared handle while the driver
//! periodically takes the messages gathered so far.
//!
//! Options: `--scale X` (or `RAYKIT_EXAMPLE_SCALE`) multiplies every sleep.

use std::time::Instant;

use raykit::ActorHandle;
use raykit_examples::{header, print_wall_time, sleep};

/// Collects messages until someone takes them.
#[derive(raykit::Actor)]
struct MessageActor {
    messages: Vec<String>,
}

#[raykit::actor]
impl MessageActor {
    /// An empty mailbox.
    pub fn new() -> Self {
        MessageActor {
            messages: Vec::new(),
        }
    }

    /// Stores one message.
    pub fn add_message(&mut self, message: String) {
        self.messages.push(message);
    }

    /// Returns the messages gathered so far and forgets them.
    pub fn get_and_clear_messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.messages)
    }
}

/// Sends `count` messages, pausing between them.
#[raykit::remote]
fn worker(actor: ActorHandle<MessageActor>, index: u32, count: u32) {
    for i in 0..count {
        sleep(0.1);
        actor.add_message(format!("message {i} from worker {index}"));
    }
}

fn main() -> raykit::Result<()> {
    let start = Instant::now();
    header("message_actor");
    raykit_examples::init(raykit::Config::default().num_cpus(3))?;

    let actor = MessageActor::remote();
    let workers: Vec<_> = (0..3)
        .map(|i| worker::remote(actor.clone(), i, 10))
        .collect();

    let mut total = 0;
    for round in 0..5 {
        let batch = raykit::get(&actor.get_and_clear_messages())?;
        total += batch.len();
        println!("round {round}: {} new messages {batch:?}", batch.len());
        sleep(0.2);
    }
    raykit::get_all(&workers)?;
    total += raykit::get(&actor.get_and_clear_messages())?.len();
    println!("messages received in total: {total} (expected 30)");
    print_wall_time(start);
    Ok(())
}
