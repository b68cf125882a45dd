//! What the library only logs but a person at the command line must see: a long wait the
//! server asked for (`Retry-After`). A minimal `tracing` subscriber picks those events (the
//! runtime logs them at `info`, with the wall-clock time the wait ends in an `until` field)
//! and shows them through the display; every other event and span is disabled.

use std::fmt;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::ui::Ui;

/// Installs the subscriber for this process; a second call does nothing.
pub fn install(ui: Arc<Ui>) {
    let _ = tracing::subscriber::set_global_default(Notices { ui });
}

struct Notices {
    ui: Arc<Ui>,
}

/// Whether an event is the runtime's "waiting per Retry-After" notice.
fn is_wait_notice(m: &Metadata<'_>) -> bool {
    m.is_event()
        && *m.level() <= Level::INFO
        && m.target().starts_with("runcomfy")
        && m.fields().field("until").is_some()
}

#[derive(Default)]
struct Fields {
    wait: Option<String>,
    until: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "wait" => self.wait = Some(value.to_owned()),
            "until" => self.until = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here, as their `Display` text.
        match field.name() {
            "wait" => self.wait = Some(format!("{value:?}")),
            "until" => self.until = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl Subscriber for Notices {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        if is_wait_notice(m) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, m: &Metadata<'_>) -> bool {
        is_wait_notice(m)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Spans are never enabled; an id is still owed.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let (Some(wait), Some(until)) = (fields.wait, fields.until) {
            self.ui.server_wait(&wait, &until);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
