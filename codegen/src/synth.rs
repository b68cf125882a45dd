//! Synthetic schema sets shaped like the real RunComfy catalog, for benchmarks.
//! Deterministic: the same count gives the same files.

use std::path::Path;

use serde_json::{json, Map, Value};

/// A small deterministic generator (64-bit LCG); no dependency, same sequence everywhere.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The vendors of the synthetic sets: the first segment of their model ids.
pub const VENDORS: &[&str] = &[
    "acme",
    "bytedance",
    "google",
    "kling",
    "minimax",
    "openai",
    "pixverse",
    "qwen",
    "runwayml",
    "wan-ai",
];
const TASKS: &[&str] = &[
    "text-to-video",
    "image-to-video",
    "text-to-image",
    "edit",
    "reference-to-video",
    "text-to-audio",
];

/// The input schema of synthetic model number `i`.
pub fn input_schema(i: usize) -> Value {
    let mut rng = Lcg(i as u64 * 7919 + 17);
    let mut props = Map::new();
    let mut required = vec![json!("prompt")];
    props.insert("prompt".into(), json!({"type": "string", "default": "", "maxLength": 2000 + rng.pick(4) * 1000, "description": "What to generate."}));
    if rng.chance(60) {
        props.insert(
            "image_url".into(),
            json!({"type": "string", "format": "image_uri", "description": "Source image."}),
        );
        required.push(json!("image_url"));
    }
    if rng.chance(40) {
        props.insert("negative_prompt".into(), json!({"type": "string", "default": "", "maxLength": 500, "description": "What to avoid."}));
    }
    let res = [
        ["720P", "1080P"],
        ["720p", "1080p"],
        ["1k", "2k"],
        ["480p", "720p"],
    ][rng.pick(4)];
    props.insert("resolution".into(), json!({"type": "string", "enum": res, "default": res[1], "description": "Output resolution."}));
    let ratios = ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "auto"];
    let n = 3 + rng.pick(4);
    props.insert("aspect_ratio".into(), json!({"type": "string", "enum": &ratios[..n], "default": "16:9", "description": "Frame shape."}));
    if rng.chance(50) {
        let lo = 2 + rng.pick(3) as i64;
        let values: Vec<i64> = (lo..=15).collect();
        props.insert(
            "duration".into(),
            json!({"type": "integer", "enum": values, "default": 5, "description": "Seconds."}),
        );
    } else {
        props.insert("duration".into(), json!({"type": "string", "enum": ["auto", "5", "10"], "default": "auto", "description": "Seconds."}));
    }
    let seed = match rng.pick(3) {
        0 => json!({"type": "integer", "minimum": 0, "maximum": 2147483647, "default": 0}),
        1 => json!({"type": "integer", "minimum": -1, "maximum": 4294967295u64, "default": -1}),
        _ => json!({"type": "integer", "default": -1}),
    };
    props.insert("seed".into(), seed);
    if rng.chance(50) {
        props.insert("cfg_scale".into(), json!({"type": "float", "minimum": 0, "maximum": 1, "default": 0.5, "description": "Prompt adherence."}));
    }
    if rng.chance(30) {
        props.insert("reference_image_urls".into(), json!({"type": "array", "format": "image_uris", "items": {"type": "string", "format": "image_uri"}, "maxItems": 4, "description": "References."}));
    }
    if rng.chance(20) {
        props.insert("loras".into(), json!({"type": "array", "maxItems": 3, "items": {"type": "object", "required": ["path"], "properties": {"path": {"type": "string", "format": "uri"}, "scale": {"type": "number", "minimum": 0, "maximum": 4, "default": 1}}}}));
    }
    props.insert(
        "watermark".into(),
        json!({"type": "boolean", "default": false, "description": "Keep the provider watermark."}),
    );
    json!({"type": "object", "required": required, "properties": props})
}

/// The model id of synthetic model number `i`.
pub fn model_id(i: usize) -> String {
    let vendor = VENDORS[i % VENDORS.len()];
    let task = TASKS[(i / VENDORS.len()) % TASKS.len()];
    format!("{vendor}/model-{i}/{task}")
}

/// Writes `count` synthetic models under `dir`.
pub fn write(dir: &Path, count: usize) -> std::io::Result<()> {
    for i in 0..count {
        let folder = dir.join(model_id(i));
        std::fs::create_dir_all(&folder)?;
        let text = serde_json::to_string_pretty(&input_schema(i)).map_err(std::io::Error::other)?;
        std::fs::write(folder.join("input.json"), text)?;
    }
    Ok(())
}
