//! Stage 1, load: the only code that reads schema files. Finds every model folder
//! (`<model_id>/input.json`, optional `output.json`) below a root and parses the JSON.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diag::Diagnostics;

/// The schema files of one model.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The model id: the folder path below the root, `/`-separated.
    pub id: String,
    /// `input.json`: its path and content.
    pub input: (PathBuf, Value),
    /// `output.json`, when present.
    pub output: Option<(PathBuf, Value)>,
}

/// Everything found below a root.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The models, sorted by id.
    pub models: Vec<ModelFiles>,
    /// Folders and files to watch for changes.
    pub watched: Vec<PathBuf>,
}

/// Reads every model folder below `root`. Folders without `input.json` are not models.
pub fn load(root: &Path, diags: &mut Diagnostics) -> Loaded {
    let mut loaded = Loaded::default();
    if !root.is_dir() {
        diags.text_error(root, 0, 0, "schema folder not found");
        return loaded;
    }
    loaded.watched.push(root.to_path_buf());
    let mut found: Vec<(String, PathBuf, Option<PathBuf>)> = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                diags.text_error(&dir, 0, 0, format!("cannot read folder: {e}"));
                continue;
            }
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        children.sort();
        for child in children {
            if child.is_dir() {
                loaded.watched.push(child.clone());
                dirs.push(child);
            }
        }
        let input_path = dir.join("input.json");
        if !input_path.is_file() {
            continue;
        }
        let id = model_id(root, &dir);
        if let Err(msg) = check_model_id(&id) {
            diags.text_error(&input_path, 0, 0, msg);
            continue;
        }
        loaded.watched.push(input_path.clone());
        let output_path = dir.join("output.json");
        let output_path = output_path.is_file().then(|| {
            loaded.watched.push(output_path.clone());
            output_path
        });
        found.push((id, input_path, output_path));
    }
    // Reading and parsing is the slow part: spread it over the cores.
    let (models, more) = crate::par_map(&found, |(id, input_path, output_path), diags| {
        let input = read_json(input_path, diags);
        let output = output_path
            .as_ref()
            .and_then(|p| read_json(p, diags).map(|v| (p.clone(), v)));
        input.map(|input| ModelFiles {
            id: id.clone(),
            input: (input_path.clone(), input),
            output,
        })
    });
    diags.extend(more);
    loaded.models = models.into_iter().flatten().collect();
    loaded.models.sort_by(|a, b| a.id.cmp(&b.id));
    loaded.watched.sort();
    loaded
}

fn model_id(root: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// A model id has 2 to 5 `/`-separated segments of `[A-Za-z0-9_.-]`.
pub fn check_model_id(id: &str) -> Result<(), String> {
    let segments: Vec<&str> = id.split('/').collect();
    if !(2..=5).contains(&segments.len()) {
        return Err(format!(
            "model id {id:?} must have 2 to 5 folder levels below the schema root, not {}",
            segments.len()
        ));
    }
    for s in segments {
        let ok = !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(format!(
                "model id {id:?} has a segment {s:?} outside [A-Za-z0-9_.-]"
            ));
        }
    }
    Ok(())
}

fn read_json(path: &Path, diags: &mut Diagnostics) -> Option<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.text_error(path, 0, 0, format!("cannot read file: {e}"));
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; the place says that already.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            diags.text_error(path, e.line(), e.column(), format!("invalid JSON: {msg}"));
            None
        }
    }
}

/// The bytes of a file, or `None` when it cannot be read (absent): to tell whether a write
/// would change it.
pub fn read_bytes(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}
