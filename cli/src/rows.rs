//! The rows of `runcomfy batch`: one JSON object per line of the input file, each merged and
//! checked exactly as `runcomfy run` checks its input (`crate::body`), and priced from the
//! catalog entry for the budget.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use runcomfy::{CatalogModel, PriceUnit};

use crate::body::{self, UsageError};
use crate::flags::ModelFlags;

/// One line of the input file that holds a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The line number in the file (1-based): part of the row's identity.
    pub line: u64,
    /// The checked request body, or why the row is refused (never sent).
    pub body: Result<Value, String>,
    /// The line's JSON as written, for a refused row whose line is JSON (the report shows it).
    pub written: Option<Value>,
    /// The fields read from local files (sent inline as `data:` URIs): name and path as
    /// written (the report links the originals instead of embedding them).
    pub local_files: Vec<(String, PathBuf)>,
}

/// What reading and checking the rows found.
#[derive(Debug, Default)]
pub struct Rows {
    /// Every row, in line order (blank lines are not rows).
    pub rows: Vec<Row>,
    /// Warnings, each once (keys a schema does not name, and the like).
    pub warnings: BTreeSet<String>,
}

impl Rows {
    /// The rows that passed the checks.
    pub fn valid(&self) -> impl Iterator<Item = (u64, &Value)> {
        self.rows
            .iter()
            .filter_map(|r| r.body.as_ref().ok().map(|b| (r.line, b)))
    }

    /// The rows that did not, with why.
    pub fn invalid(&self) -> impl Iterator<Item = (u64, &str)> {
        self.rows
            .iter()
            .filter_map(|r| r.body.as_ref().err().map(|e| (r.line, e.as_str())))
    }
}

/// Reads `path` (`-`: standard input): one JSON object per line; blank lines are skipped but
/// counted, so a row's number is its line in the file. Each row gets `sets` (`--set`, which win,
/// as in `run`), then the model's checks: `model` when it is built in, then the typed check.
/// A line that is not a JSON object, or fails a check, is a refused row; an unreadable file is
/// an error.
pub fn read(
    path: &Path,
    model_id: &str,
    model: Option<&'static ModelFlags>,
    sets: &[String],
) -> Result<Rows, UsageError> {
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| UsageError(format!("{}: cannot read: {e}", path.display())))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut set_map = Map::new();
    body::apply_sets(sets, &mut set_map)?;
    let mut rows = Rows::default();
    for (index, line) in reader.lines().enumerate() {
        let line_no = index as u64 + 1;
        let text =
            line.map_err(|e| UsageError(format!("{}: line {line_no}: {e}", path.display())))?;
        if text.trim().is_empty() {
            continue;
        }
        let body = check_row(&text, model_id, model, &set_map, &mut rows.warnings);
        let written = serde_json::from_str::<Value>(&text).ok();
        let (written, local_files) = match &body {
            Ok(sent) => (None, local_files(written.as_ref(), sent)),
            Err(_) => (written, Vec::new()),
        };
        rows.rows.push(Row {
            line: line_no,
            body,
            written,
            local_files,
        });
    }
    if rows.rows.is_empty() {
        return Err(UsageError(format!(
            "{}: no rows (one JSON object per line is expected)",
            path.display()
        )));
    }
    Ok(rows)
}

/// The top-level fields whose written value (a path) was sent as a `data:` URI.
fn local_files(written: Option<&Value>, sent: &Value) -> Vec<(String, PathBuf)> {
    let Some(Value::Object(written)) = written else {
        return Vec::new();
    };
    written
        .iter()
        .filter_map(|(k, v)| {
            let path = v.as_str().filter(|p| !p.starts_with("data:"))?;
            let inline = sent.get(k)?.as_str()?.starts_with("data:");
            inline.then(|| (k.clone(), PathBuf::from(path)))
        })
        .collect()
}

fn check_row(
    text: &str,
    model_id: &str,
    model: Option<&'static ModelFlags>,
    sets: &Map<String, Value>,
    warnings: &mut BTreeSet<String>,
) -> Result<Value, String> {
    let mut body = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err("not a JSON object".to_owned()),
        Err(e) => return Err(format!("not valid JSON: {e}")),
    };
    for (k, v) in sets {
        body.insert(k.clone(), v.clone());
    }
    if let Some(m) = model {
        warnings.extend(body::complete(m, &mut body).map_err(|e| e.0)?);
    }
    let body = Value::Object(body);
    if let Some(result) = body::check_typed(model_id, &body) {
        result.map_err(|e| e.0)?;
    }
    Ok(body)
}

/// A model's price, from its catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// USD per unit.
    pub usd: f64,
    /// Per second of output, or per output.
    pub unit: PriceUnit,
}

impl Price {
    /// The price of a catalog entry, when it states one in a unit we can count.
    pub fn of(entry: &CatalogModel) -> Option<Price> {
        let usd = entry
            .base_price_usd
            .filter(|p| p.is_finite() && *p >= 0.0)?;
        let unit = entry.price_unit.clone()?;
        matches!(unit, PriceUnit::Second | PriceUnit::Output).then_some(Price { usd, unit })
    }

    /// What one row is estimated to cost: per second, the row's `duration` (else the schema's
    /// default); per output, the row's output count (`num_images`, `num_outputs`, ...; else the
    /// schema's default, else 1). `None` when a per-second row states no duration.
    pub fn estimate(&self, body: &Value, model: Option<&ModelFlags>) -> Option<f64> {
        let units = match self.unit {
            PriceUnit::Second => number_field(body, model, &["duration"])?,
            PriceUnit::Output => number_field(body, model, OUTPUT_COUNT_KEYS).unwrap_or(1.0),
            _ => return None,
        };
        Some(self.usd * units)
    }
}

/// The keys a schema names the number of outputs with.
const OUTPUT_COUNT_KEYS: &[&str] = &[
    "num_images",
    "num_outputs",
    "num_videos",
    "number_of_images",
    "num_samples",
    "batch_size",
    "n",
];

/// The first of `keys` the body holds as a number (or a numeric string such as `"5"` or
/// `"5s"`), else the schema's default of the first of them it has.
fn number_field(body: &Value, model: Option<&ModelFlags>, keys: &[&str]) -> Option<f64> {
    let from_body = keys.iter().find_map(|k| body.get(*k).and_then(as_number));
    from_body.or_else(|| {
        let flags = model?.flags;
        keys.iter().find_map(|k| {
            let spec = flags.iter().find(|f| f.wire == *k)?;
            let default: Value = serde_json::from_str(spec.default?).ok()?;
            as_number(&default)
        })
    })
}

fn as_number(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().trim_end_matches('s').trim().parse().ok()?,
        _ => return None,
    };
    (x.is_finite() && x >= 0.0).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const I2V: &str = "happyhorse/happyhorse-1.0/image-to-video";

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn each_line_is_checked_and_keeps_its_number() {
        let m = crate::flags::model(I2V);
        let f = write(concat!(
            r#"{"image_url": "https://x/a.png", "prompt": "one"}"#,
            "\n\n",
            r#"{"image_url": "https://x/b.png", "prompt": "two", "seed": -1}"#,
            "\n",
            "[1, 2]\n",
            "{not json\n",
            r#"{"prompt": "no image"}"#,
            "\n",
        ));
        let rows = read(f.path(), I2V, m, &["duration=5".into()]).unwrap();
        let lines: Vec<u64> = rows.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 3, 4, 5, 6]);
        let valid: Vec<(u64, &Value)> = rows.valid().collect();
        assert_eq!(valid.len(), 1);
        assert_eq!(valid[0].0, 1);
        assert_eq!(valid[0].1["duration"], json!(5));
        let invalid: Vec<(u64, &str)> = rows.invalid().collect();
        assert_eq!(invalid.len(), 4);
        assert!(invalid[0].1.contains("--seed"), "{}", invalid[0].1);
        assert_eq!(invalid[1], (4, "not a JSON object"));
        assert!(
            invalid[2].1.starts_with("not valid JSON"),
            "{}",
            invalid[2].1
        );
        assert!(invalid[3].1.contains("--image-url"), "{}", invalid[3].1);
    }

    #[test]
    fn an_empty_file_is_an_error() {
        let f = write("\n \n");
        assert!(read(f.path(), I2V, crate::flags::model(I2V), &[]).is_err());
    }

    #[test]
    fn estimates_follow_the_price_unit() {
        let m = crate::flags::model(I2V);
        let per_second = Price {
            usd: 0.1,
            unit: PriceUnit::Second,
        };
        let e = |p: &Price, v: Value| p.estimate(&v, m).map(|x| (x * 1000.0).round() / 1000.0);
        assert_eq!(e(&per_second, json!({"duration": 7})), Some(0.7));
        assert_eq!(e(&per_second, json!({"duration": "10"})), Some(1.0));
        assert_eq!(e(&per_second, json!({"duration": "4s"})), Some(0.4));
        // The schema's default duration (5 s) when the row has none.
        assert_eq!(e(&per_second, json!({})), Some(0.5));
        assert_eq!(per_second.estimate(&json!({}), None), None);
        let per_output = Price {
            usd: 0.04,
            unit: PriceUnit::Output,
        };
        assert_eq!(e(&per_output, json!({"num_images": 3})), Some(0.12));
        assert_eq!(e(&per_output, json!({})), Some(0.04));
        let other = Price {
            usd: 1.0,
            unit: PriceUnit::Other("token".into()),
        };
        assert_eq!(other.estimate(&json!({}), None), None);
    }
}
