//! What the binary prints is true and safe, through the real binary and the fake server:
//! server text never drives the terminal, and a submit another command has in flight is not
//! called lost.

mod common;

use std::time::Duration;

use common::{i2v_args, text, Env};
use runcomfy_fake::Lifecycle;
use runcomfy_testenv::{Within as _, DEADLINE};
use serde_json::json;

/// A failed job's error carries escape sequences that would erase the line and print a
/// forged green `succeeded`: they are shown escaped, never sent to the terminal.
#[test]
fn a_servers_control_sequences_are_shown_not_obeyed() {
    let env = Env::new();
    let forged = "boom\u{1b}[2K\r\u{1b}[32msucceeded\u{1b}[0m\u{7}";
    env.server
        .script_next(Lifecycle::new().then_fail(json!({ "message": forged })));
    let o = env.std_cmd().args(i2v_args()).within(DEADLINE);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        assert!(
            !bytes
                .iter()
                .any(|b| *b == 0x1b || *b == b'\r' || *b == 0x07),
            "{stream} carries raw control bytes: {:?}",
            text(bytes)
        );
    }
    let stderr = text(&o.stderr);
    assert!(stderr.contains("boom\\u{1b}[2K"), "{stderr}");
}

/// `jobs` while another `run` waits for its submit's answer: that submit is in flight, not
/// "submitted without an answer".
#[test]
fn jobs_tells_a_submit_in_flight_from_a_lost_one() {
    let env = Env::new();
    let child = env.run_with_submit_in_flight(Duration::from_secs(3));
    let o = env.std_cmd().arg("jobs").within(DEADLINE);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("being submitted now"), "{stderr}");
    assert!(!stderr.contains("without an answer"), "{stderr}");
    let o = child.within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
}
