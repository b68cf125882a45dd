//! The run of `runcomfy batch`: the rows run through the library's batch engine
//! (`runcomfy::batch`) with the store as the one record, the progress shown (one bar and a
//! line per active job on a terminal, plain lines off it, `--json` events), the manifest and
//! the page rewritten every few seconds and at the end, and the exit code from the totals.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use runcomfy::batch::{BatchEvent, BatchSummary, StopReason, UnsavedRow};
use runcomfy::download::SaveFault;
use runcomfy_store::{BatchStatus, RowFilter, SharedStore, State, StoreTimings, TimedStore};

use crate::exit::{self, Reported};
use crate::ui::{err, out, Mode, Ui};

use super::batch::{open_store, write_report, Plan};
use super::batch_status::{totals_json, totals_line};
use super::{Ctx, Phase};

/// How often the manifest and the page are rewritten while the batch runs, at the least.
const REPORT_EVERY: Duration = Duration::from_secs(15);

/// The shortest time between two rewrites when rows end (each rewrite reads the whole batch).
const REPORT_GAP: Duration = Duration::from_secs(2);

/// Active job lines shown under the bar, at most.
const MAX_LINES: usize = 16;

pub async fn exec(ctx: &Ctx, mut plan: Plan) -> anyhow::Result<()> {
    let rows = std::mem::take(&mut plan.rows);
    // The store records where each file was saved: an absolute path reads the same from any
    // folder (`batch report`, another shell).
    if plan.out.is_relative() {
        if let Ok(cwd) = std::env::current_dir() {
            plan.out = cwd.join(&plan.out);
        }
    }
    // Every store call is timed (a few clock reads per database round trip): the `--json`
    // summary tells how long the rows waited on the store.
    let timed = Arc::new(TimedStore::new(
        open_store(ctx, plan.args.store.as_deref()).await?,
    ));
    let store: SharedStore = timed.clone();
    let client = ctx.client_with_store(store.clone())?;
    let args = &plan.args;
    let mut resubmit = Vec::new();
    if args.resubmit_uncertain {
        if let Some(batch) = store.batch(&plan.name).await? {
            resubmit = store
                .batch_rows(batch.id, &RowFilter::in_state(State::Uncertain))
                .await?
                .iter()
                .filter_map(|r| r.batch.map(|(_, line)| line))
                .collect();
            if !resubmit.is_empty() {
                ctx.ui.warn(&format!(
                    "sending {} uncertain row(s) again (lines {}): each is paid twice if its first submit reached RunComfy",
                    resubmit.len(),
                    lines_text(&resubmit)
                ));
            }
        }
    }
    let total_rows = rows.len() as u64;
    let mut batch = client
        .batch(&plan.model, &plan.name)
        .rows(rows)
        .concurrency(args.concurrency as usize)
        .outputs_dir(&plan.out)
        .resubmit_uncertain(resubmit);
    if let Some(n) = args.max_in_flight {
        batch = batch.max_in_flight(n);
    }
    if let Some(n) = args.max_jobs {
        batch = batch.max_jobs(n);
    }
    if let Some(x) = args.budget_usd {
        batch = batch.budget_usd(x);
    }
    if let Some(lease) = args.lease {
        batch = batch.lease(lease);
    }
    ctx.set_batch_stop(batch.stopper());
    ctx.set_phase(Phase::Batch {
        name: plan.name.clone(),
    });
    let display = Arc::new(Mutex::new(Display::new(ctx.ui.clone(), total_rows)));
    let shown = display.clone();
    let ended = Arc::new(tokio::sync::Notify::new());
    let reports = tokio::spawn(rewrite_reports(
        store.clone(),
        plan.name.clone(),
        plan.out.clone(),
        plan.refused.clone(),
        plan.sources.clone(),
        ended.clone(),
    ));
    let result = batch
        .run_with(move |event| {
            if matches!(
                event,
                BatchEvent::Opened { .. }
                    | BatchEvent::Finished { .. }
                    | BatchEvent::Uncertain { .. }
            ) {
                ended.notify_one();
            }
            lock(&shown).event(event)
        })
        .await;
    reports.abort();
    // Waits for a rewrite in progress to end: the last one below uses the same temporary file.
    let _ = reports.await;
    lock(&display).finish();
    if let Err(e @ runcomfy::Error::FolderTaken { .. }) = result {
        // Another batch's folder: its report is not ours to rewrite.
        return Err(anyhow::Error::from(e).context(format!(
            "batch {:?} did not start and nothing was sent: pass another --out, or the --name of the batch that owns the folder to continue that one",
            plan.name
        )));
    }
    let report = write_report(&*store, &plan.name, &plan.out, &plan.refused, &plan.sources).await;
    let summary = result?;
    let status = match report {
        Ok(status) => status,
        // A folder that cannot take the report (full disk) still gets the run's summary.
        Err(e) => {
            ctx.ui.warn(&format!(
                "cannot write the report: {}; `runcomfy batch report {} --out DIR` writes it later",
                exit::message(&e),
                plan.name
            ));
            store.batch_status(&plan.name).await?
        }
    };
    finish(ctx, &plan, &summary, &status, &timed.timings())
}

/// Rewrites the report when the batch opens (`ended` is notified first by the batch's
/// opening) and as rows end (at most every [`REPORT_GAP`]), and every [`REPORT_EVERY`] anyway,
/// until aborted: a page opened during the run shows the rows done so far.
async fn rewrite_reports(
    store: SharedStore,
    name: String,
    out: PathBuf,
    refused: Vec<(u64, String)>,
    sources: Arc<crate::report::Sources>,
    ended: Arc<tokio::sync::Notify>,
) {
    // Nothing before the batch opened: the folder is known to be this batch's only then.
    ended.notified().await;
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.tick().await;
    loop {
        // A failed rewrite is tried again at the next change, tick and at the end.
        let _ = write_report(&*store, &name, &out, &refused, &sources).await;
        tokio::time::sleep(REPORT_GAP).await;
        tokio::select! {
            _ = tick.tick() => {}
            _ = ended.notified() => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn lines_text(lines: &[u64]) -> String {
    let shown: Vec<String> = lines.iter().take(20).map(u64::to_string).collect();
    let more = lines.len().saturating_sub(20);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// The exit code of a batch run: 8 when it let go of rows whose outputs it could not save,
/// else from the totals: 0 when every row succeeded, 7 while rows are uncertain, queued or in
/// flight, else 5 (every row ended, some not succeeded).
pub fn exit_code(summary: &BatchSummary, status: &BatchStatus) -> u8 {
    if !summary.unsaved.is_empty() {
        exit::UNSAVED
    } else if status.uncertain > 0 || !status.is_done() {
        exit::INCOMPLETE
    } else if status.failed + status.cancelled > 0 {
        exit::JOB
    } else {
        exit::OK
    }
}

fn finish(
    ctx: &Ctx,
    plan: &Plan,
    summary: &BatchSummary,
    status: &BatchStatus,
    timings: &StoreTimings,
) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let code = exit_code(summary, status);
    let index = plan.out.join(crate::report::INDEX);
    let stopped = summary.stopped.as_ref().map(ToString::to_string);
    if ui.mode() == Mode::Json {
        ui.event(json!({
            "event": "batch_done",
            "name": plan.name,
            "submitted": summary.submitted,
            "reattached": summary.reattached,
            "finished": summary.finished,
            "stopped_submitting": stopped,
            "uncertain_lines": summary.uncertain_lines,
            "unsaved": summary.unsaved.iter().map(unsaved_json).collect::<Vec<_>>(),
            "invalid_lines": plan.refused.iter().map(|(l, _)| l).collect::<Vec<_>>(),
            "totals": totals_json(status),
            "manifest": plan.out.join(crate::report::MANIFEST),
            "index": index,
            "exit_code": code,
            "store": timings_json(timings),
        }));
    } else {
        if ui.mode() != Mode::Quiet {
            err(&format!(
                "batch {}: this run submitted {}, re-attached {}, saw {} end",
                plan.name, summary.submitted, summary.reattached, summary.finished
            ));
            if let Some(reason) = &stopped {
                err(&format!("stopped submitting: {reason}"));
            }
        }
        out(&totals_line(status));
        if !summary.uncertain_lines.is_empty() {
            err(&format!(
                "{} row(s) are uncertain (submitted, outcome unknown; never sent again unless --resubmit-uncertain): lines {}; `runcomfy batch status {}` lists them",
                summary.uncertain_lines.len(),
                lines_text(&summary.uncertain_lines),
                plan.name
            ));
        }
        if !summary.unsaved.is_empty() {
            unsaved_text(&summary.unsaved);
        }
        out(&index.display().to_string());
    }
    if code == exit::OK {
        Ok(())
    } else {
        Err(Reported(code).into())
    }
}

/// Why a row's outputs were not saved, worded for the person who fixes it.
fn fault_text(fault: &SaveFault) -> String {
    match fault {
        SaveFault::Refused { status: 404 } => {
            "the file host answered 404 (the file is not there, or its link expired)".to_owned()
        }
        SaveFault::Refused { status } => format!("the file host answered {status}"),
        SaveFault::Unreachable => "the file host could not be reached".to_owned(),
        SaveFault::Folder { path, full: true } => {
            format!(
                "the disk is full or read-only: cannot write {}",
                path.display()
            )
        }
        SaveFault::Folder { path, .. } => format!("cannot write {}", path.display()),
        _ => "the download failed".to_owned(),
    }
}

/// The unsaved rows on standard error: how many, which, why, and what to do.
fn unsaved_text(rows: &[UnsavedRow]) {
    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    err(&format!(
        "{} row(s) succeeded but their outputs are not saved (recorded as saving, with their output urls): lines {}",
        rows.len(),
        lines_text(&lines)
    ));
    for row in rows.iter().take(20) {
        err(&format!(
            "  line {} ({}): {}: {}",
            row.line,
            row.request_id,
            fault_text(&row.fault),
            row.error
        ));
    }
    if rows.len() > 20 {
        err(&format!("  and {} more", rows.len() - 20));
    }
    err("fix the cause (file host, disk space, the folder), then run the same command again: it saves them and submits nothing again");
}

fn unsaved_json(row: &UnsavedRow) -> serde_json::Value {
    let (reason, path, status) = match &row.fault {
        SaveFault::Refused { status } => ("refused", None, Some(*status)),
        SaveFault::Unreachable => ("unreachable", None, None),
        SaveFault::Folder { path, full: true } => ("disk_full", Some(path), None),
        SaveFault::Folder { path, .. } => ("unwritable", Some(path), None),
        _ => ("other", None, None),
    };
    json!({
        "line": row.line,
        "request_id": row.request_id,
        "reason": reason,
        "status": status,
        "path": path,
        "message": fault_text(&row.fault),
        "error": row.error,
    })
}

/// What this process's store calls cost, for the `--json` summary: the wall time of every
/// call, the rows' lives and the part of them spent waiting on the store, calls per settled
/// row, and each operation's calls and seconds.
fn timings_json(t: &StoreTimings) -> serde_json::Value {
    let operations: serde_json::Map<String, serde_json::Value> = t
        .operations
        .iter()
        .map(|o| {
            (
                o.name.to_owned(),
                json!({"calls": o.calls, "seconds": o.seconds}),
            )
        })
        .collect();
    json!({
        "seconds": t.elapsed_seconds,
        "calls": t.calls,
        "store_seconds": t.store_seconds,
        "rows_claimed": t.rows_claimed,
        "rows_settled": t.rows_settled,
        "row_seconds": t.row_seconds,
        "row_store_seconds": t.row_store_seconds,
        "row_store_share": t.row_store_share(),
        "calls_per_row": t.calls_per_row(),
        "operations": operations,
    })
}

/// What a batch shows while it runs.
struct Display {
    ui: Arc<Ui>,
    mode: Mode,
    total: u64,
    status: Option<BatchStatus>,
    multi: Option<MultiProgress>,
    bar: Option<ProgressBar>,
    lines: BTreeMap<u64, ProgressBar>,
    started: Instant,
}

impl Display {
    fn new(ui: Arc<Ui>, total: u64) -> Display {
        let mode = ui.mode();
        let (multi, bar) = if mode == Mode::Terminal {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let bar = multi.add(ProgressBar::new(total));
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30.cyan/blue} {pos}/{len} {msg} [{elapsed}, ETA {eta}]",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            (Some(multi), Some(bar))
        } else {
            (None, None)
        };
        Display {
            ui,
            mode,
            total,
            status: None,
            multi,
            bar,
            lines: BTreeMap::new(),
            started: Instant::now(),
        }
    }

    fn done(s: &BatchStatus) -> u64 {
        s.succeeded + s.failed + s.cancelled + s.uncertain
    }

    fn totals_text(&self) -> String {
        match &self.status {
            Some(s) => format!(
                "{}/{} done: {} succeeded, {} failed, {} uncertain, {} running, {} queued; ${:.3}",
                Self::done(s),
                s.total,
                s.succeeded,
                s.failed + s.cancelled,
                s.uncertain,
                s.claimed + s.submitting + s.running + s.saving,
                s.queued,
                s.spent_usd
            ),
            None => format!("{} rows", self.total),
        }
    }

    fn plain(&self, line: &str) {
        match self.mode {
            Mode::Plain => err(line),
            Mode::Terminal => match &self.multi {
                Some(m) => {
                    let _ = m.println(crate::ui::printable(line));
                }
                None => err(line),
            },
            _ => {}
        }
    }

    fn start_line(&mut self, line: u64, request_id: &str, verb: &str) {
        let Some(multi) = &self.multi else { return };
        if self.lines.len() >= MAX_LINES || self.lines.contains_key(&line) {
            return;
        }
        let bar = multi.add(ProgressBar::new_spinner());
        if let Ok(style) =
            ProgressStyle::with_template("  {spinner} row {prefix} {msg} [{elapsed}]")
        {
            bar.set_style(style);
        }
        bar.set_prefix(line.to_string());
        bar.set_message(format!("{verb} {request_id}"));
        bar.enable_steady_tick(Duration::from_millis(200));
        self.lines.insert(line, bar);
    }

    fn end_line(&mut self, line: u64) {
        if let Some(bar) = self.lines.remove(&line) {
            bar.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&bar);
            }
        }
    }

    fn event(&mut self, event: BatchEvent) {
        match event {
            BatchEvent::Opened {
                created, status, ..
            } => {
                self.ui.event(json!({"event": "batch_opened", "created": created, "totals": totals_json(&status)}));
                let verb = if created { "created" } else { "continued" };
                self.plain(&format!(
                    "batch {} {verb}: {}",
                    status.name,
                    totals_line(&status)
                ));
                if let Some(bar) = &self.bar {
                    bar.set_length(status.total);
                    bar.set_position(Self::done(&status));
                    bar.reset_eta();
                }
                self.status = Some(status);
            }
            BatchEvent::Submitted { line, request_id } => {
                self.ui.event(
                    json!({"event": "row_submitted", "line": line, "request_id": request_id}),
                );
                if self.mode == Mode::Plain {
                    self.plain(&format!("line {line}: submitted {request_id}"));
                }
                self.start_line(line, &request_id, "running");
            }
            BatchEvent::Reattached { line, request_id } => {
                self.ui.event(
                    json!({"event": "row_reattached", "line": line, "request_id": request_id}),
                );
                if self.mode == Mode::Plain {
                    self.plain(&format!("line {line}: re-attached {request_id}"));
                }
                self.start_line(line, &request_id, "re-attached");
            }
            BatchEvent::Finished {
                line,
                state,
                files,
                cost_usd,
                error,
                ..
            } => {
                self.ui.event(json!({
                    "event": "row_finished",
                    "line": line,
                    "state": state.as_str(),
                    "files": files,
                    "cost_usd": cost_usd,
                    "error": error,
                }));
                self.end_line(line);
                let cost = cost_usd.map(|c| format!(" ${c:.3}")).unwrap_or_default();
                let files = if files.is_empty() {
                    String::new()
                } else {
                    format!(", {} file(s)", files.len())
                };
                let why = error.map(|e| format!(": {e}")).unwrap_or_default();
                if self.mode == Mode::Plain || state != State::Succeeded {
                    self.plain(&format!("line {line}: {state}{cost}{files}{why}"));
                }
            }
            BatchEvent::Uncertain { line, error } => {
                self.ui
                    .event(json!({"event": "row_uncertain", "line": line, "error": error}));
                self.end_line(line);
                self.plain(&format!(
                    "line {line}: uncertain ({error}): the job may exist and be paid; it is never sent again unless --resubmit-uncertain"
                ));
            }
            BatchEvent::Throttled { until } => {
                let wait = until.duration_since(SystemTime::now()).unwrap_or_default();
                let unix_ms = until
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                self.ui.event(json!({"event": "throttled", "until_unix_ms": unix_ms, "wait_ms": wait.as_millis() as u64}));
                self.plain(&format!(
                    "rate limited: every worker holds its submits for {:.1}s",
                    wait.as_secs_f64()
                ));
            }
            BatchEvent::StoppedSubmitting { reason } => {
                self.ui
                    .event(json!({"event": "stopped_submitting", "reason": reason.to_string()}));
                let then = if reason == StopReason::Interrupted {
                    "the jobs already submitted go on at RunComfy and the same command follows them"
                } else {
                    "the rows in flight are followed to their end"
                };
                self.plain(&format!("stopped submitting: {reason}; {then}"));
            }
            BatchEvent::NotRecorded { request_id, error } => {
                // A paid job's only handle: said in every display mode, on standard error.
                self.ui.event(
                    json!({"event": "not_recorded", "request_id": request_id, "error": error}),
                );
                if self.mode != Mode::Json {
                    err(&format!(
                        "job {request_id} was submitted but the store could not record it ({error}): keep this id: `runcomfy result {request_id}` shows its outputs (a batch row the store lost is not resumed as a single job)"
                    ));
                }
            }
            BatchEvent::Progress(status) => {
                self.ui
                    .event(json!({"event": "progress", "totals": totals_json(&status)}));
                if let Some(bar) = &self.bar {
                    bar.set_length(status.total);
                    bar.set_position(Self::done(&status));
                }
                self.status = Some(status);
                if let Some(bar) = &self.bar {
                    bar.set_message(self.totals_text());
                }
                if self.mode == Mode::Plain {
                    // One totals line now and then, not per row.
                    let every = (self.total / 10).max(1);
                    if let Some(s) = &self.status {
                        if Self::done(s) % every == 0 {
                            self.plain(&self.totals_text());
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        let lines: Vec<u64> = self.lines.keys().copied().collect();
        for line in lines {
            self.end_line(line);
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let _ = self.started;
    }
}
