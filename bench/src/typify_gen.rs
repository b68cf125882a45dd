//! typify 0.8 as the baseline generator: the same schema folders, normalized only as far as
//! typify needs, one `TypeSpace` per schema (typify merges same-named types across the
//! schemas of one space), output formatted with prettyplease like ours.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use serde_json::{Map, Value};

/// One schema file of one model: `(model id, "input" or "output", path)`.
#[derive(Debug, Clone)]
pub struct SchemaFile {
    /// The model id (the folder path below the schema folder).
    pub id: String,
    /// `Input` or `Output`: the root type's name.
    pub root: &'static str,
    /// The file.
    pub path: PathBuf,
}

/// Every `input.json` and `output.json` below `dir`, sorted by model id.
pub fn schema_files(dir: &Path) -> Result<Vec<SchemaFile>> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<SchemaFile>) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("read {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            if path.is_dir() {
                walk(&path, base, out)?;
                continue;
            }
            let root = match e.file_name().to_str() {
                Some("input.json") => "Input",
                Some("output.json") => "Output",
                _ => continue,
            };
            let id = dir
                .strip_prefix(base)
                .map_err(|_| anyhow!("{} is outside {}", dir.display(), base.display()))?
                .to_string_lossy()
                .replace('\\', "/");
            out.push(SchemaFile { id, root, path });
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// What typify needs and our generator does not: a root `title` (typify emits nothing for an
/// untitled root; `root` is the name ours gives), `float` spelled `number`, `$defs` under
/// `definitions` (the draft-07 spelling schemars 0.8 reads), and no `format` on arrays
/// (typify 0.8 hits `todo!()` on `type: array` with a format such as `image_uris`); an array
/// without `items` gets `items: {}` (what it means).
pub fn normalize(mut schema: Value, root: &str) -> Value {
    fix(&mut schema);
    if let Value::Object(obj) = &mut schema {
        obj.insert("title".into(), Value::String(root.to_owned()));
        if let Some(defs) = obj.remove("$defs") {
            let merged = obj
                .entry("definitions")
                .or_insert_with(|| Value::Object(Map::new()));
            if let (Value::Object(into), Value::Object(from)) = (merged, defs) {
                into.extend(from);
            }
        }
    }
    schema
}

fn fix(v: &mut Value) {
    match v {
        Value::Object(obj) => {
            if let Some(t) = obj.get_mut("type") {
                match t {
                    Value::String(s) if s.eq_ignore_ascii_case("float") => *s = "number".into(),
                    Value::Array(ts) => {
                        for t in ts {
                            if let Value::String(s) = t {
                                if s.eq_ignore_ascii_case("float") {
                                    *s = "number".into();
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let Some(Value::String(r)) = obj.get_mut("$ref") {
                if let Some(rest) = r.strip_prefix("#/$defs/") {
                    *r = format!("#/definitions/{rest}");
                }
            }
            let is_array = match obj.get("type") {
                Some(Value::String(s)) => s == "array",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "array"),
                _ => false,
            };
            if is_array {
                obj.remove("format");
                obj.entry("items")
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            for (_, child) in obj.iter_mut() {
                fix(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fix),
        _ => {}
    }
}

/// Writes normalized copies of every schema below `src` under `dst` (same layout): the input
/// typify reads in the benchmarks, so that typify's timed work is read, parse, generate,
/// format, like ours (which does its own normalization inside the timed work).
pub fn write_normalized(src: &Path, dst: &Path) -> Result<()> {
    for f in schema_files(src)? {
        let text = std::fs::read_to_string(&f.path)?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("parse {}", f.path.display()))?;
        let out = dst.join(&f.id);
        std::fs::create_dir_all(&out)?;
        let name = if f.root == "Input" {
            "input.json"
        } else {
            "output.json"
        };
        std::fs::write(
            out.join(name),
            serde_json::to_string_pretty(&normalize(value, f.root))?,
        )?;
    }
    Ok(())
}

/// A module name for a model id: `wan-ai/model-3/text-to-video` → `wan_ai_model_3_text_to_video`.
pub fn module_name(id: &str) -> String {
    let mut s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'm');
    }
    s
}

/// typify's code for one schema file (already normalized), unformatted.
fn type_space(file: &SchemaFile) -> Result<proc_macro2::TokenStream> {
    let text = std::fs::read_to_string(&file.path)?;
    let root: schemars08::schema::RootSchema = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a schema typify reads", file.path.display()))?;
    let mut space = typify::TypeSpace::new(&typify::TypeSpaceSettings::default());
    space
        .add_root_schema(root)
        .map_err(|e| anyhow!("{}: typify: {e}", file.path.display()))?;
    Ok(space.to_stream())
}

/// Generates and formats every model below `dir` (normalized schemas, see
/// [`write_normalized`]) on every core with rayon, as ours does: one module per model
/// holding its input and output spaces, in model order.
pub fn generate(dir: &Path) -> Result<String> {
    let files = schema_files(dir)?;
    // Group a model's input and output: one module each.
    let mut models: Vec<Vec<&SchemaFile>> = Vec::new();
    for f in &files {
        match models.last_mut() {
            Some(m) if m[0].id == f.id => m.push(f),
            _ => models.push(vec![f]),
        }
    }
    let parts: Vec<String> = models
        .par_iter()
        .map(|model| render_model(model))
        .collect::<Result<_>>()?;
    let mut code = String::from("// @generated by typify 0.8 (runcomfy-bench baseline).\n\n");
    for part in parts {
        code.push_str(&part);
    }
    Ok(code)
}

fn render_model(files: &[&SchemaFile]) -> Result<String> {
    let id = &files[0].id;
    let doc = format!("Model `{id}`.");
    let name = quote::format_ident!("{}", module_name(id));
    let mut inner = proc_macro2::TokenStream::new();
    for f in files {
        let body = type_space(f)?;
        let sub = quote::format_ident!("{}", f.root.to_ascii_lowercase());
        inner.extend(quote::quote! {
            pub mod #sub { #body }
        });
    }
    let tokens = quote::quote! {
        #[doc = #doc]
        pub mod #name { #inner }
    };
    let file: syn::File = syn::parse2(tokens).map_err(|e| anyhow!("{id}: {e}"))?;
    Ok(prettyplease::unparse(&file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalizes_what_typify_needs() {
        let got = normalize(
            json!({"type": "object", "$defs": {"A": {"type": "Float"}}, "properties": {
                "a": {"$ref": "#/$defs/A"},
                "b": {"type": "array", "format": "image_uris"},
                "c": {"type": ["float", "null"]}
            }}),
            "Input",
        );
        assert_eq!(
            got,
            json!({"type": "object", "title": "Input", "definitions": {"A": {"type": "number"}},
            "properties": {
                "a": {"$ref": "#/definitions/A"},
                "b": {"type": "array", "items": {}},
                "c": {"type": ["number", "null"]}
            }})
        );
        assert_eq!(
            module_name("wan-ai/wan-2.7/edit"),
            "wan_ai_wan_2_7_edit".to_owned()
        );
    }

    #[test]
    fn typify_accepts_shipped_and_synthetic_schemas() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let synth = tempfile::tempdir().unwrap();
        runcomfy_codegen::synth::write(synth.path(), 20).unwrap();
        for src in [shipped.as_path(), synth.path()] {
            let norm = tempfile::tempdir().unwrap();
            write_normalized(src, norm.path()).unwrap();
            let code = generate(norm.path()).unwrap();
            assert!(code.contains("pub struct Input"), "{}", &code[..500]);
        }
    }
}
