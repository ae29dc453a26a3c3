//! Waiting for an event the test cannot be told about directly: a process exiting, a file
//! appearing, a server having seen a request.

use std::time::{Duration, Instant};

/// How long [`wait_until`] waits before it calls the test hung. Generous on purpose: it is a
/// hang guard, not a measurement.
pub const HANG_GUARD: Duration = Duration::from_secs(300);

/// Wait until `condition()` holds, checking it again every few milliseconds.
///
/// This waits on an *event* (a process exit, a file appearing, a request count reaching a
/// number), and the test then asserts on what happened, never on how long it took. The only
/// time limit is [`HANG_GUARD`]: if the event has not happened by then, the test fails with
/// `what` in the message instead of hanging forever. It is a hang guard, not a timing
/// assertion: a loaded machine makes the wait longer, it does not make the test fail.
#[track_caller]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < HANG_GUARD,
            "hang guard: still waiting after {HANG_GUARD:?} for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
