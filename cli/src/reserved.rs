/// Long names the `run` command uses itself: a model field whose flag name would be one of
/// them gets the `field-` prefix instead (`--field-input`). Shared with `build.rs`.
pub const RESERVED: &[&str] = &[
    "input",
    "set",
    "dry-run",
    "out",
    "no-wait",
    "max-download-mb",
    "cancel-on-timeout",
    "unchecked",
    "json",
    "quiet",
    "poll-interval",
    "timeout",
    "retries",
    "help",
    "version",
    "model",
    "store",
];
