//! The old JSON-lines journal (`journal.jsonl`), read once to import its unfinished jobs into
//! the job store, then renamed aside (`journal.jsonl.imported`).
//!
//! Reading recovers every intact record: a damaged line costs only itself (a record glued
//! behind garbage on one line is found too), a torn last line is skipped, and the later
//! records of a job whose first record was damaged still make an entry, so no request id is
//! hidden. Imported: jobs with a request id not seen ending, or that succeeded with outputs
//! wanted in a folder and not all saved (request id, model, folder and saved files kept), and
//! jobs whose submit was never answered (imported `uncertain`, never sent again).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use runcomfy_store::{Finish, JobKey, JobStore, State};
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use crate::ui::Ui;

/// The journal's file name in the data folder.
pub const FILE_NAME: &str = "journal.jsonl";

/// The name the journal gets once imported.
pub const IMPORTED_NAME: &str = "journal.jsonl.imported";

/// The input recorded for an imported job (the journal kept only the body's SHA-256).
const MARK: &str = "imported_from_journal";

/// One line of the file.
#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "v")]
    _version: u32,
    job: String,
    #[serde(flatten)]
    event: Event,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    Submitting {
        model_id: String,
        input_sha256: String,
    },
    Submitted {
        request_id: String,
    },
    SubmitFailed {
        may_exist: bool,
        #[serde(default)]
        request_id: Option<String>,
        error: String,
    },
    Ended {
        state: String,
        #[serde(default)]
        output: Option<Value>,
    },
    Expired {},
    OutputsWanted {
        dir: PathBuf,
    },
    Saved {
        url: String,
        path: PathBuf,
    },
    Downloaded {},
}

/// Where a journal's job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Recorded before sending, no answer recorded: it may exist without a known request id.
    Submitting,
    /// The server returned a request id; not seen ending.
    Submitted,
    /// The submit failed in a way that does not prove the server refused it.
    Uncertain,
    /// Refused, failed, cancelled, expired, or succeeded with every wanted output saved.
    Done,
    /// Succeeded with outputs wanted in a folder and not all saved.
    Unsaved,
}

/// Everything the journal knows of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The journal's local job id.
    pub job: String,
    /// The model (empty when the first record was damaged).
    pub model_id: String,
    /// The SHA-256 of the body as sent (empty when unknown).
    pub input_sha256: String,
    /// The request id, once returned.
    pub request_id: Option<String>,
    /// Where it stands.
    pub standing: Standing,
    /// The output of a job that succeeded.
    pub output: Option<Value>,
    /// The submit's error message.
    pub error: Option<String>,
    /// The folder its outputs were wanted in.
    pub out_dir: Option<PathBuf>,
    /// The outputs saved: `(url, path)`.
    pub saved: Vec<(String, PathBuf)>,
}

impl Entry {
    fn new(job: String) -> Entry {
        Entry {
            job,
            model_id: String::new(),
            input_sha256: String::new(),
            request_id: None,
            standing: Standing::Submitting,
            output: None,
            error: None,
            out_dir: None,
            saved: Vec::new(),
        }
    }

    /// True when the job is left to finish or to decide on: it is imported.
    pub fn is_unfinished(&self) -> bool {
        match self.standing {
            Standing::Submitted | Standing::Unsaved => self.request_id.is_some(),
            Standing::Submitting | Standing::Uncertain => true,
            Standing::Done => false,
        }
    }
}

/// Folds the records of a journal file into entries, oldest first.
pub fn fold(bytes: &[u8]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    // Whether each entry's outputs are wanted and not yet all saved.
    let mut pending: Vec<bool> = Vec::new();
    for record in records(bytes) {
        let index = match (
            &record.event,
            entries.iter().rposition(|e| e.job == record.job),
        ) {
            (Event::Submitting { .. }, _) | (_, None) => {
                // A new job, or one whose first record was lost: its later records still
                // make an entry.
                entries.push(Entry::new(record.job));
                pending.push(false);
                entries.len() - 1
            }
            (_, Some(i)) => i,
        };
        let entry = &mut entries[index];
        match record.event {
            Event::Submitting {
                model_id,
                input_sha256,
            } => {
                entry.model_id = model_id;
                entry.input_sha256 = input_sha256;
            }
            Event::Submitted { request_id } => {
                entry.request_id = Some(request_id);
                entry.standing = Standing::Submitted;
            }
            Event::SubmitFailed {
                may_exist,
                request_id,
                error,
            } => {
                if request_id.is_some() {
                    entry.request_id = request_id;
                }
                entry.error = Some(error);
                entry.standing = match (may_exist, &entry.request_id) {
                    (false, _) => Standing::Done,
                    (true, Some(_)) => Standing::Submitted,
                    (true, None) => Standing::Uncertain,
                };
            }
            Event::Ended { state, output } => {
                entry.standing = Standing::Done;
                if matches!(state.as_str(), "succeeded" | "completed") {
                    entry.output = Some(output.unwrap_or_else(|| json!({})));
                }
            }
            Event::Expired {} => entry.standing = Standing::Done,
            Event::OutputsWanted { dir } => {
                entry.out_dir = Some(dir);
                pending[index] = true;
            }
            Event::Saved { url, path } => entry.saved.push((url, path)),
            Event::Downloaded {} => pending[index] = false,
        }
    }
    for (entry, pending) in entries.iter_mut().zip(pending) {
        if entry.standing == Standing::Done && pending && entry.output.is_some() {
            entry.standing = Standing::Unsaved;
        }
    }
    entries
}

/// Every intact record of a journal file, in order. A line that does not parse is searched
/// for a record glued behind the damage (a torn write that a later append was not fenced
/// from); a last line without its newline is a torn write and skipped.
fn records(bytes: &[u8]) -> impl Iterator<Item = Record> + '_ {
    const START: &[u8] = b"{\"v\":";
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &[][..],
    };
    complete.split(|b| *b == b'\n').filter_map(|line| {
        if let Ok(record) = serde_json::from_slice::<Record>(line) {
            return Some(record);
        }
        // Each later start of a record on the line, tried once: linear in the line's length
        // times the number of starts, which damage makes few.
        (1..line.len())
            .filter(|&i| line[i..].starts_with(START))
            .find_map(|i| serde_json::from_slice::<Record>(&line[i..]).ok())
    })
}

/// Imports the unfinished jobs of the journal in `dir` into `store`, once: the file is then
/// renamed aside. Says what it did in one line. A journal that cannot be read is left alone
/// with a warning; a job that cannot be imported keeps the file for the next command.
pub async fn import_once(ui: &Ui, store: &dyn JobStore, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            ui.warn(&format!(
                "the old job journal {} cannot be read ({e}); its jobs are not imported",
                path.display()
            ));
            return Ok(());
        }
    };
    let unfinished: Vec<Entry> = fold(&bytes)
        .into_iter()
        .filter(Entry::is_unfinished)
        .collect();
    let mut imported = 0usize;
    let mut uncertain = 0usize;
    let mut already: Option<Vec<String>> = None;
    for entry in &unfinished {
        match import(store, entry, &mut already).await {
            Ok(Some(State::Uncertain)) => {
                imported += 1;
                uncertain += 1;
            }
            Ok(Some(_)) => imported += 1,
            Ok(None) => {}
            Err(e) => {
                return Err(e.context(format!(
                    "cannot import job {} of the old journal {} into the job store (it is kept, and the import is tried again by the next command)",
                    entry.job,
                    path.display()
                )))
            }
        }
    }
    let aside = free_name(dir);
    std::fs::rename(&path, &aside).with_context(|| {
        format!(
            "cannot rename the imported journal {} to {}",
            path.display(),
            aside.display()
        )
    })?;
    let line = if unfinished.is_empty() {
        format!(
            "the old job journal had no unfinished job; it is kept as {}",
            aside.display()
        )
    } else {
        format!(
            "imported {imported} unfinished job(s) ({uncertain} uncertain) from the old job journal into the job store; the journal is kept as {}",
            aside.display()
        )
    };
    ui.note(&line);
    ui.event(json!({"event": "journal_imported", "jobs": imported, "uncertain": uncertain, "kept_as": aside}));
    Ok(())
}

/// `journal.jsonl.imported`, or `.imported-1`, ... when taken.
fn free_name(dir: &Path) -> PathBuf {
    let mut n = 0u32;
    loop {
        let name = match n {
            0 => IMPORTED_NAME.to_owned(),
            n => format!("{IMPORTED_NAME}-{n}"),
        };
        let candidate = dir.join(name);
        if !candidate.exists() || n >= 10_000 {
            return candidate;
        }
        n += 1;
    }
}

/// Imports one entry; `None` when the store has it already (an import cut short before).
async fn import(
    store: &dyn JobStore,
    entry: &Entry,
    already: &mut Option<Vec<String>>,
) -> anyhow::Result<Option<State>> {
    let model_id = if entry.model_id.is_empty() {
        "unknown"
    } else {
        &entry.model_id
    };
    let input = json!({ MARK: {"job": entry.job, "input_sha256": entry.input_sha256} });
    let Some(request_id) = &entry.request_id else {
        // Never answered: uncertain, found again by its journal job id.
        if already.is_none() {
            let known = store.uncertain().await?;
            *already = Some(
                known
                    .iter()
                    .filter_map(|r| r.input[MARK]["job"].as_str().map(str::to_owned))
                    .collect(),
            );
        }
        if already
            .as_ref()
            .is_some_and(|known| known.contains(&entry.job))
        {
            return Ok(None);
        }
        let key = store.record_intent(model_id, &input).await?;
        let why = entry.error.as_deref().unwrap_or("no answer was recorded");
        store
            .record_uncertain(
                key,
                &format!(
                    "imported from the old job journal (job {}, input sha256 {}): the submit may have reached RunComfy: {why}",
                    entry.job, entry.input_sha256
                ),
            )
            .await?;
        return Ok(Some(State::Uncertain));
    };
    if store.job_by_request_id(request_id).await?.is_some() {
        return Ok(None);
    }
    let key = store.record_intent(model_id, &input).await?;
    if let Some(dir) = &entry.out_dir {
        store.record_outputs_wanted(key, dir).await?;
    }
    store.record_submitted(key, request_id).await?;
    if entry.standing != Standing::Unsaved {
        return Ok(Some(State::Submitted));
    }
    let output = entry.output.clone().unwrap_or_else(|| json!({}));
    let wanted: Vec<Url> = runcomfy::download::output_urls(&output);
    let finish = Finish::succeeded(output).wanting(wanted.iter().map(|u| u.as_str().to_owned()));
    let mut state = store.record_finished(key, &finish).await?;
    record_saved(store, key, &wanted, &entry.saved, &mut state).await?;
    Ok(Some(state))
}

/// Records the files the journal saw saved that are still there, each under the wanted URL
/// it matches (signed URLs change their query between answers).
async fn record_saved(
    store: &dyn JobStore,
    key: JobKey,
    wanted: &[Url],
    saved: &[(String, PathBuf)],
    state: &mut State,
) -> anyhow::Result<()> {
    for url in wanted {
        let found = saved
            .iter()
            .rev()
            .filter(|(u, _)| Url::parse(u).is_ok_and(|u| crate::download::same_file_url(&u, url)))
            .map(|(_, p)| p)
            .find(|p| p.is_file());
        if let Some(path) = found {
            *state = store.record_output_saved(key, url.as_str(), path).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(v: Value) -> String {
        format!("{v}\n")
    }

    #[test]
    fn records_fold_into_what_is_unfinished() {
        let mut text = String::new();
        let at = "2026-01-01T00:00:00Z";
        for v in [
            json!({"v":1,"at":at,"job":"a","event":"submitting","model_id":"m/a","input_sha256":"h"}),
            json!({"v":1,"at":at,"job":"a","event":"submitted","request_id":"ra"}),
            json!({"v":1,"at":at,"job":"b","event":"submitting","model_id":"m/b","input_sha256":"h"}),
            json!({"v":1,"at":at,"job":"b","event":"submit_failed","may_exist":true,"error":"timed out"}),
            json!({"v":1,"at":at,"job":"c","event":"submitting","model_id":"m/c","input_sha256":"h"}),
            json!({"v":1,"at":at,"job":"c","event":"submit_failed","may_exist":false,"error":"422"}),
            json!({"v":1,"at":at,"job":"d","event":"submitting","model_id":"m/d","input_sha256":"h"}),
            json!({"v":1,"at":at,"job":"d","event":"submitted","request_id":"rd"}),
            json!({"v":1,"at":at,"job":"d","event":"outputs_wanted","dir":"out"}),
            json!({"v":1,"at":at,"job":"d","event":"ended","state":"succeeded","output":{"v":"https://cdn/d.mp4"}}),
            json!({"v":1,"at":at,"job":"e","event":"submitting","model_id":"m/e","input_sha256":"h"}),
            json!({"v":1,"at":at,"job":"e","event":"submitted","request_id":"re"}),
            json!({"v":1,"at":at,"job":"e","event":"outputs_wanted","dir":"out"}),
            json!({"v":1,"at":at,"job":"e","event":"ended","state":"succeeded","output":{}}),
            json!({"v":1,"at":at,"job":"e","event":"downloaded","paths":[]}),
            json!({"v":1,"at":at,"job":"f","event":"submitting","model_id":"m/f","input_sha256":"h"}),
            json!({"v":1,"at":at,"job":"f","event":"submitted","request_id":"rf"}),
            json!({"v":1,"at":at,"job":"f","event":"expired","error":"gone"}),
        ] {
            text.push_str(&line(v));
        }
        let entries = fold(text.as_bytes());
        let standing: Vec<(&str, Standing, bool)> = entries
            .iter()
            .map(|e| (e.job.as_str(), e.standing, e.is_unfinished()))
            .collect();
        assert_eq!(
            standing,
            vec![
                ("a", Standing::Submitted, true),
                ("b", Standing::Uncertain, true),
                ("c", Standing::Done, false),
                ("d", Standing::Unsaved, true),
                ("e", Standing::Done, false),
                ("f", Standing::Done, false),
            ]
        );
        assert_eq!(entries[3].out_dir, Some(PathBuf::from("out")));
    }

    #[test]
    fn an_import_cut_short_is_finished_without_duplicates() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = runcomfy_store::open(&dir.path().join("jobs.db").display().to_string())
                .await
                .unwrap();
            let at = "2026-01-01T00:00:00Z";
            let text: String = [
                json!({"v":1,"at":at,"job":"a","event":"submitting","model_id":"m/a","input_sha256":"h"}),
                json!({"v":1,"at":at,"job":"a","event":"submitted","request_id":"ra"}),
                json!({"v":1,"at":at,"job":"b","event":"submitting","model_id":"m/b","input_sha256":"h"}),
                json!({"v":1,"at":at,"job":"b","event":"submit_failed","may_exist":true,"error":"timed out"}),
            ]
            .into_iter()
            .map(line)
            .collect();
            let journal = dir.path().join(FILE_NAME);
            let ui = Ui::new(false, true);
            // Imported, then (as after a kill before the rename) the same file again.
            for _ in 0..2 {
                std::fs::write(&journal, &text).unwrap();
                import_once(&ui, store.as_ref(), dir.path()).await.unwrap();
                assert!(!journal.exists());
            }
            assert_eq!(store.unfinished().await.unwrap().len(), 1);
            assert_eq!(store.uncertain().await.unwrap().len(), 1);
            assert_eq!(store.recent_jobs(10).await.unwrap().len(), 2);
            assert!(dir.path().join(IMPORTED_NAME).exists());
            assert!(dir.path().join(format!("{IMPORTED_NAME}-1")).exists());
        });
    }

    #[test]
    fn damaged_lines_hide_no_intact_record() {
        let at = "2026-01-01T00:00:00Z";
        let first = line(
            json!({"v":1,"at":at,"job":"a","event":"submitting","model_id":"m/a","input_sha256":"h"}),
        );
        let submitted =
            line(json!({"v":1,"at":at,"job":"a","event":"submitted","request_id":"ra"}));
        // The first record damaged, then a record glued behind garbage, then a torn last line.
        let text = format!(
            "{}#garbage\nxx{}{{\"v\":1,\"at\":\"{at}\",\"job\":\"a\",\"event\":\"ended\"",
            &first[..first.len() / 2],
            submitted
        );
        let entries = fold(text.as_bytes());
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].request_id.as_deref(), Some("ra"));
        assert_eq!(entries[0].standing, Standing::Submitted);
        assert!(entries[0].is_unfinished());
    }
}
