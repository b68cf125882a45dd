//! Scripted job lifecycles of the fake server.

use std::time::Duration;

use serde_json::Value;

/// How long a [`Stage`] lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// For this many polls (`/status` or `/result` requests on the job).
    Polls(u32),
    /// For this long on the server's clock (real, paused-tokio, or manual).
    Time(Duration),
    /// Forever: the job never leaves this stage (for deadline tests).
    Forever,
}

/// One stage of a lifecycle: the wire state answered while it lasts.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The wire state (`in_queue`, `in_progress`, or anything, such as `starting`).
    pub state: String,
    /// The queue position answered by `/status` while in `in_queue`.
    pub queue_position: Option<u64>,
    /// How long it lasts.
    pub span: Span,
}

/// How a job ends once its stages are over.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// `succeeded`, with this output (or a sample made from the model's output schema).
    Succeed(Option<Value>),
    /// `failed`, with this `error` value.
    Fail(Value),
    /// `cancelled` (as if cancelled on the server side).
    Cancel,
}

/// A scripted job: stages, then an ending.
///
/// ```
/// use std::time::Duration;
/// use runcomfy_fake::{Lifecycle, Span};
/// // Queued at positions 2 then 1 (one poll each), "starting" for 2 polls, running for
/// // 3 polls, then succeeded with a sample output.
/// let l = Lifecycle::new()
///     .queue_positions(&[2, 1])
///     .state("starting", Span::Polls(2))
///     .running(Span::Polls(3))
///     .then_succeed();
/// // A 60 s job on the server's clock: 5 s queued, 55 s running.
/// let timed = Lifecycle::timed(Duration::from_secs(5), Duration::from_secs(55));
/// # let _ = (l, timed);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Lifecycle {
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// The ending.
    pub ending: Ending,
}

impl Default for Lifecycle {
    /// One queued poll, one running poll, then success.
    fn default() -> Self {
        Lifecycle::new()
            .queued(1, Span::Polls(1))
            .running(Span::Polls(1))
            .then_succeed()
    }
}

impl Lifecycle {
    /// No stages: succeeded at the first poll (change the ending with the `then_*` methods).
    pub fn new() -> Self {
        Lifecycle {
            stages: Vec::new(),
            ending: Ending::Succeed(None),
        }
    }

    /// Queued for `span`, then running for `run`, then succeeded: a job of fixed length on
    /// the server's clock.
    pub fn timed(queue: Duration, run: Duration) -> Self {
        Lifecycle::new()
            .queued(1, Span::Time(queue))
            .running(Span::Time(run))
            .then_succeed()
    }

    /// Adds a stage in any wire state.
    pub fn state(mut self, state: &str, span: Span) -> Self {
        self.stages.push(Stage {
            state: state.to_owned(),
            queue_position: None,
            span,
        });
        self
    }

    /// Adds an `in_queue` stage at `position`.
    pub fn queued(mut self, position: u64, span: Span) -> Self {
        self.stages.push(Stage {
            state: "in_queue".to_owned(),
            queue_position: Some(position),
            span,
        });
        self
    }

    /// Adds one `in_queue` stage of one poll per position.
    pub fn queue_positions(mut self, positions: &[u64]) -> Self {
        for p in positions {
            self = self.queued(*p, Span::Polls(1));
        }
        self
    }

    /// Adds an `in_progress` stage.
    pub fn running(self, span: Span) -> Self {
        self.state("in_progress", span)
    }

    /// Ends in `succeeded` with a sample output.
    pub fn then_succeed(mut self) -> Self {
        self.ending = Ending::Succeed(None);
        self
    }

    /// Ends in `succeeded` with `output`.
    pub fn then_succeed_with(mut self, output: Value) -> Self {
        self.ending = Ending::Succeed(Some(output));
        self
    }

    /// Ends in `failed` with `error`.
    pub fn then_fail(mut self, error: Value) -> Self {
        self.ending = Ending::Fail(error);
        self
    }

    /// Ends in `cancelled`.
    pub fn then_cancel(mut self) -> Self {
        self.ending = Ending::Cancel;
        self
    }
}

/// Where a job is: in a stage, or ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Now {
    Stage(Stage),
    Ended(Ending),
}

/// A job's progress through its lifecycle.
#[derive(Debug, Clone)]
pub(crate) struct Progression {
    lifecycle: Lifecycle,
    index: usize,
    polls_in_stage: u32,
    stage_started: Duration,
    cancelled: bool,
}

impl Progression {
    pub(crate) fn new(lifecycle: Lifecycle, now: Duration) -> Self {
        Progression {
            lifecycle,
            index: 0,
            polls_in_stage: 0,
            stage_started: now,
            cancelled: false,
        }
    }

    /// Moves past finished stages and tells where the job is at `now`.
    pub(crate) fn current(&mut self, now: Duration) -> Now {
        if self.cancelled {
            return Now::Ended(Ending::Cancel);
        }
        while let Some(stage) = self.lifecycle.stages.get(self.index) {
            let over = match stage.span {
                Span::Polls(n) => self.polls_in_stage >= n,
                Span::Time(d) => now.saturating_sub(self.stage_started) >= d,
                Span::Forever => false,
            };
            if !over {
                return Now::Stage(stage.clone());
            }
            self.stage_started = match stage.span {
                Span::Time(d) => self.stage_started.saturating_add(d),
                _ => now,
            };
            self.index += 1;
            self.polls_in_stage = 0;
        }
        Now::Ended(self.lifecycle.ending.clone())
    }

    /// Counts one poll against the current stage.
    pub(crate) fn polled(&mut self) {
        self.polls_in_stage = self.polls_in_stage.saturating_add(1);
    }

    pub(crate) fn cancel(&mut self) {
        self.cancelled = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_drive_stages() {
        let mut p = Progression::new(
            Lifecycle::new()
                .queue_positions(&[2, 1])
                .running(Span::Polls(2))
                .then_fail(Value::from("boom")),
            Duration::ZERO,
        );
        let mut seen = Vec::new();
        for _ in 0..6 {
            let now = p.current(Duration::ZERO);
            p.polled();
            seen.push(match now {
                Now::Stage(s) => format!("{}{:?}", s.state, s.queue_position),
                Now::Ended(e) => format!("{e:?}"),
            });
        }
        assert_eq!(
            seen,
            [
                "in_queueSome(2)",
                "in_queueSome(1)",
                "in_progressNone",
                "in_progressNone",
                "Fail(String(\"boom\"))",
                "Fail(String(\"boom\"))"
            ]
        );
    }

    #[test]
    fn time_drives_stages() {
        let s = Duration::from_secs;
        let mut p = Progression::new(Lifecycle::timed(s(5), s(55)), Duration::ZERO);
        assert!(matches!(p.current(s(0)), Now::Stage(st) if st.state == "in_queue"));
        assert!(matches!(p.current(s(4)), Now::Stage(st) if st.state == "in_queue"));
        assert!(matches!(p.current(s(5)), Now::Stage(st) if st.state == "in_progress"));
        assert!(matches!(p.current(s(59)), Now::Stage(st) if st.state == "in_progress"));
        assert!(matches!(
            p.current(s(60)),
            Now::Ended(Ending::Succeed(None))
        ));
        // Time jumps skip stages.
        let mut p = Progression::new(Lifecycle::timed(s(5), s(55)), Duration::ZERO);
        assert!(matches!(p.current(s(600)), Now::Ended(_)));
    }
}
