//! The batch page as a gallery: a real 25-row batch through the binary against the fake
//! server (images, videos with sound, failed and invalid rows, input thumbnails from the file
//! host and an input file sent inline), its page checked as text (always) and driven in a real
//! headless Chromium over the DevTools protocol (`#[needs(chromium)]`): filters, search, the
//! detail view, keys, every media element loaded, a screenshot.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{media, Env};
use runcomfy_fake::{Lifecycle, ModelSpec};
use runcomfy_testenv::browser::{file_url, Browser};
use runcomfy_testenv::DEADLINE;
use serde_json::{json, Value};

const MODEL: &str = "acme/gallery/image-to-video";
const SCHEMA: &str = r#"{"type":"object","required":["prompt"],"properties":{"prompt":{"type":"string"},"image_url":{"type":"string"},"steps":{"type":"integer"}}}"#;

/// Rows: 25 lines, of which line 13 is not JSON (invalid, skipped, never sent), line 7 lacks
/// its prompt (the server refuses it: the model is unchecked here), lines 4 and 17 fail on
/// the server; the others succeed with a video and a sound (every third line) or an image.
/// Line 10's input image is sent inline as a `data:` URI.
const LINES: u64 = 25;
const INVALID: [u64; 1] = [13];
const REFUSED: [u64; 1] = [7];
const FAILED: [u64; 2] = [4, 17];

/// A payload that must never appear in the page.
const INLINE: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk";

fn prompt(line: u64) -> String {
    let subject = [
        "a red fox",
        "a lighthouse",
        "a zebra crossing a river",
        "an old tram",
        "a paper boat",
    ][line as usize % 5];
    format!(
        "{subject} at golden hour, line {line}, cinematic, slow dolly-in, soft volumetric light, shallow depth of field, photorealistic textures"
    )
}

/// Runs the 25-row batch (`--concurrency 1`, so the jobs are submitted in line order and the
/// scripted endings land on their lines); returns the env and the manifest by line.
fn gallery_batch() -> (Env, Vec<Value>) {
    let env = Env::new();
    let video = env.files.add("clip.webm", media::WEBM.to_vec());
    let sound = env.files.add("track.wav", media::wav());
    let picture = env.files.add("still.png", media::png(64, 40));
    let input = env.files.add("input.png", media::png(32, 32));
    env.server
        .set_model(ModelSpec::new(MODEL, SCHEMA).price(0.25, "output"))
        .unwrap();
    let mut lines = Vec::new();
    for line in 1..=LINES {
        if line == 13 {
            lines.push("{not json".to_owned());
            continue;
        }
        if line == 7 {
            lines.push(json!({"steps": 3}).to_string());
            continue;
        }
        let image = if line == 10 {
            format!("data:image/png;base64,{INLINE}{}", "A".repeat(4000))
        } else {
            input.clone()
        };
        lines.push(json!({"prompt": prompt(line), "image_url": image, "steps": 20}).to_string());
        let ending = if FAILED.contains(&line) {
            Lifecycle::new().then_fail(
                json!({"message": format!("content policy: <b>refused</b> line {line}")}),
            )
        } else if line % 3 == 0 {
            Lifecycle::new().then_succeed_with(json!({"video": video, "audio": sound}))
        } else {
            Lifecycle::new().then_succeed_with(json!({"images": [picture]}))
        };
        env.server.script_next(ending);
    }
    let rows = env.path("rows.jsonl");
    std::fs::write(&rows, lines.join("\n") + "\n").unwrap();
    let db = env.path("jobs.db").display().to_string();
    env.cmd()
        .args([
            "batch",
            MODEL,
            "--unchecked",
            "--skip-invalid",
            "--concurrency",
            "1",
            "--input",
        ])
        .arg(&rows)
        .args(["--out", "out", "--store", &db])
        .timeout(DEADLINE)
        .assert()
        .code(5);
    let manifest: Vec<Value> = std::fs::read_to_string(env.path("out/manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(manifest.len() as u64, LINES);
    for m in &manifest {
        let line = m["row"].as_u64().unwrap();
        let want = if INVALID.contains(&line) {
            "invalid"
        } else if FAILED.contains(&line) {
            "failed"
        } else if REFUSED.contains(&line) {
            "refused"
        } else {
            "succeeded"
        };
        assert_eq!(m["state"], want, "{m}");
    }
    (env, manifest)
}

/// The page's JSON blob, parsed.
fn page_data(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"data\">";
    let start = page.find(open).expect("no data blob") + open.len();
    let end = start + page[start..].find("</script>").expect("unclosed data blob");
    serde_json::from_str(&page[start..end]).expect("the data blob is JSON")
}

#[test]
fn the_page_embeds_no_input_file_and_escapes_its_data() {
    let (env, _) = gallery_batch();
    let page = std::fs::read_to_string(env.path("out/index.html")).unwrap();
    assert!(!page.contains(INLINE), "an input file is embedded");
    assert!(!page.contains("base64,"), "a data: URI is on the page");
    assert!(!page.contains("<b>refused"), "unescaped server text");
    assert_eq!(page.matches("<script").count(), 2);
    assert!(!page.contains("src=\"http") && !page.contains("<link"));
    let data = page_data(&page);
    assert_eq!(data["done"], true);
    let rows = data["rows"].as_array().unwrap();
    assert_eq!(rows.len() as u64, LINES);
    let row10 = &rows[9]["in"];
    assert_eq!(row10[1]["k"], "image_url");
    assert_eq!(row10[1]["t"], "data");
    assert_eq!(row10[1]["m"], "image/png");
    assert_eq!(rows[0]["in"][1]["t"], "img");
    assert_eq!(rows[0]["in"][1]["n"], "input.png");
    assert_eq!(rows[3]["x"], "content policy: <b>refused</b> line 4");
    assert!(rows[6]["a"].as_str().unwrap().contains("fix line 7"));
    assert!(rows[2]["rt"].as_f64().is_some(), "no run time: {}", rows[2]);
    assert_eq!(rows[2]["o"][0]["k"], "video");
}

#[test]
fn a_running_batch_page_shows_the_rows_done_so_far() {
    use runcomfy_testenv::Within as _;
    let env = Env::new();
    let picture = env.files.add("still.png", media::png(16, 16));
    env.server
        .set_model(
            ModelSpec::new(MODEL, SCHEMA)
                .output(json!({"image": picture}))
                .price(0.25, "output"),
        )
        .unwrap();
    // Ten jobs of half a second each, one at a time: about five seconds of run.
    env.server
        .set_lifecycle(Lifecycle::timed(Duration::ZERO, Duration::from_millis(500)));
    let lines: Vec<String> = (1..=10)
        .map(|l| json!({"prompt": prompt(l)}).to_string())
        .collect();
    let rows = env.path("rows.jsonl");
    std::fs::write(&rows, lines.join("\n") + "\n").unwrap();
    let db = env.path("jobs.db").display().to_string();
    let child = env
        .std_cmd()
        .args([
            "batch",
            MODEL,
            "--unchecked",
            "--concurrency",
            "1",
            "--input",
        ])
        .arg(&rows)
        .args(["--out", "out", "--store", &db])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // While it runs, the page (replaced whole, never half written) shows some rows succeeded
    // and the batch not done.
    let page = env.path("out/index.html");
    let mut seen = None;
    let partial = common::wait_until(Duration::from_secs(60), || {
        let Ok(text) = std::fs::read_to_string(&page) else {
            return false;
        };
        let data = page_data(&text);
        let done = data["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["s"] == "succeeded")
            .count();
        seen = Some((done, data["done"].clone()));
        data["done"] == false && (1..10).contains(&done)
    });
    let out = child.within(DEADLINE);
    assert!(out.status.success(), "{out:?}");
    assert!(
        partial,
        "no page with the rows done so far; last seen {seen:?}"
    );
    let data = page_data(&std::fs::read_to_string(&page).unwrap());
    assert_eq!(data["done"], true);
}

/// A batch of a built-in model (so local files are read and sent inline): line 1 names a
/// local image, line 2 is refused (its duration is not allowed).
fn local_batch() -> Env {
    let env = Env::new();
    let cat = env.path("my cat.png");
    std::fs::write(&cat, media::png(24, 24)).unwrap();
    let video = env.files.add("clip.webm", media::WEBM.to_vec());
    env.server
        .script_next(Lifecycle::new().then_succeed_with(json!({"video": video})));
    let rows = env.path("rows.jsonl");
    let lines = [
        json!({"image_url": cat, "prompt": "a cat"}).to_string(),
        json!({"image_url": "https://example.test/cat.png", "prompt": "too long", "duration": 99})
            .to_string(),
    ];
    std::fs::write(&rows, lines.join("\n") + "\n").unwrap();
    let db = env.path("jobs.db").display().to_string();
    env.cmd()
        .args(["batch", common::I2V, "--skip-invalid", "--input"])
        .arg(&rows)
        .args(["--out", "out", "--store", &db])
        .timeout(DEADLINE)
        .assert()
        .success();
    env
}

#[test]
fn local_inputs_link_their_originals_and_invalid_rows_show_their_line() {
    let env = local_batch();
    let page = std::fs::read_to_string(env.path("out/index.html")).unwrap();
    assert!(!page.contains("base64,"), "an input file is embedded");
    let data = page_data(&page);
    let image = &data["rows"][0]["in"][0];
    assert_eq!(image["k"], "image_url");
    assert_eq!(image["t"], "data");
    assert_eq!(image["m"], "image/png");
    assert_eq!(image["n"], "my cat.png");
    let href = image["f"].as_str().unwrap();
    assert!(
        href.starts_with("file:///") && href.ends_with("/my%20cat.png"),
        "{href}"
    );
    // The refused row shows its line as written, and why.
    let invalid = &data["rows"][1];
    assert_eq!(invalid["s"], "invalid");
    assert_eq!(
        invalid["in"][1],
        json!({"k": "prompt", "t": "text", "v": "too long"})
    );
    assert!(
        invalid["x"].as_str().unwrap().contains("duration"),
        "{invalid}"
    );
}

/// True once the page's script rendered its first cards.
const READY: &str = "document.documentElement.dataset.rendered==='1'";

/// A headless Chromium with `page` open and rendered.
fn open_page(page: &Path) -> Browser {
    let mut b = Browser::launch(&runcomfy_testenv::chromium(), DEADLINE);
    b.open(&file_url(page), READY, Duration::from_secs(30));
    b
}

#[runcomfy_testenv::needs(chromium)]
#[test]
fn a_local_input_image_is_a_thumbnail_of_its_original() {
    let env = local_batch();
    let mut b = open_page(&env.path("out/index.html"));
    let limit = Duration::from_secs(30);
    b.wait_for(
        "(()=>{const i=document.querySelector('.card[data-line=\"1\"] img.thumb');return !!i&&i.complete&&i.naturalWidth===24})()",
        limit,
    );
    let prompt = b.eval("document.querySelector('.card[data-line=\"2\"] .prompt').textContent");
    assert_eq!(prompt, "too long");
    b.wait_for(
        "(()=>{const d=document.documentElement.dataset;return d.videoTotal==='1'&&d.mediaLoaded===d.mediaTotal})()",
        limit,
    );
}

/// Where the screenshot is kept for a person to look at.
fn shot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("gallery-25.png")
}

/// The cards in the DOM, as `[line, state]`.
const CARDS: &str = "Array.from(document.querySelectorAll('#grid .card')).map(c=>[+c.dataset.line,c.dataset.state]).sort((a,b)=>a[0]-b[0])";

#[runcomfy_testenv::needs(chromium)]
#[test]
fn the_gallery_works_in_a_browser() {
    let (env, manifest) = gallery_batch();
    let mut b = open_page(&env.path("out/index.html"));
    let limit = Duration::from_secs(30);
    // The cards on the 1280x1600 window and a little below (not necessarily all 25): every
    // output image, video and sound on them loads (a video with a picture size, a sound with
    // a duration), and every input thumbnail from the file host.
    let loaded = "(()=>{const d=document.documentElement.dataset;return +d.mediaTotal>0&&d.mediaLoaded===d.mediaTotal&&d.mediaFailed==='0'})()";
    let check_media = |b: &mut Browser| {
        let cards = b.eval(CARDS);
        let lines: Vec<u64> = cards
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[0].as_u64().unwrap())
            .collect();
        b.wait_for(loaded, limit);
        let counts = b.eval("(()=>{const d=document.documentElement.dataset;return [+d.imgTotal,+d.videoTotal,+d.audioTotal]})()");
        let ok = |l: &&u64| !INVALID.contains(l) && !REFUSED.contains(l) && !FAILED.contains(l);
        let videos = lines.iter().filter(ok).filter(|l| *l % 3 == 0).count();
        let images = lines.iter().filter(ok).count() - videos;
        assert_eq!(counts, json!([images, videos, videos]), "{cards}");
        let thumbs = lines.iter().filter(|l| ![7, 10, 13].contains(*l)).count();
        b.wait_for(
            &format!("(()=>{{const t=[...document.querySelectorAll('#grid img.thumb')];return t.length==={thumbs}&&t.every(i=>i.complete&&i.naturalWidth>0)}})()"),
            limit,
        );
        lines
    };
    let first = check_media(&mut b);
    assert!(first.len() >= 16 && first.contains(&1), "{first:?}");
    // A long prompt is cut between two words, and fits its card's lines.
    let shown = b.eval("document.querySelector('.card[data-line=\"2\"] .prompt').textContent");
    let shown = shown.as_str().unwrap();
    let stem = shown.trim_end_matches('\u{2026}');
    let full = prompt(2);
    assert!(
        stem.len() < full.len()
            && full.starts_with(stem)
            && full[stem.len()..].starts_with([' ', ',']),
        "cut inside a word: {shown}"
    );
    assert_eq!(
        b.eval("[...document.querySelectorAll('#grid .prompt')].every(p=>p.scrollHeight<=p.clientHeight+1)"),
        true
    );
    // Line 10's inline input is described, not shown.
    let chip = b.eval("document.querySelector('.card[data-line=\"10\"] .chip').textContent");
    assert!(chip.as_str().unwrap().starts_with("image/png, "), "{chip}");

    let shot = shot_path();
    let png = b.screenshot(&shot);
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "not a real screenshot"
    );
    assert_eq!(&png[16..24], &[0, 0, 5, 0, 0, 0, 6, 64], "not 1280x1600");

    // At the end of the page, the last rows are rendered and load too.
    b.eval("window.scrollTo(0, document.body.scrollHeight)");
    b.wait_for(
        &format!("!!document.querySelector('.card[data-line=\"{LINES}\"]')"),
        limit,
    );
    check_media(&mut b);
    b.eval("window.scrollTo(0, 0)");

    // A click on a state filter changes which cards are shown.
    b.click("#filters button[data-filter=failed]");
    b.wait_for("document.documentElement.dataset.shown==='3'", limit);
    assert_eq!(
        b.eval(CARDS),
        json!([[4, "failed"], [7, "refused"], [17, "failed"]])
    );
    let why = b.eval("document.querySelector('.card[data-line=\"4\"] .why').textContent");
    assert_eq!(why, "content policy: <b>refused</b> line 4");
    b.click("#filters button[data-filter=invalid]");
    b.wait_for("document.documentElement.dataset.shown==='1'", limit);
    assert_eq!(b.eval(CARDS), json!([[13, "invalid"]]));
    let why = b.eval("document.querySelector('.card[data-line=\"13\"] .why').textContent");
    assert!(why.as_str().unwrap().contains("not valid JSON"), "{why}");
    b.click("#filters button[data-filter=all]");
    b.wait_for(
        &format!("document.documentElement.dataset.shown==='{LINES}'"),
        limit,
    );

    // The search narrows them: "zebra" is in the prompts of lines 2, 12, 17 and 22 only
    // (line 7 has no prompt).
    b.click("#search");
    b.type_text("zebra");
    b.wait_for("document.documentElement.dataset.shown==='4'", limit);
    assert_eq!(
        b.eval(CARDS),
        json!([
            [2, "succeeded"],
            [12, "succeeded"],
            [17, "failed"],
            [22, "succeeded"]
        ])
    );

    // The detail view opens on a click and shows the request id; the arrow keys move to the
    // next row; Escape closes it.
    b.click(".card[data-line=\"12\"]");
    b.wait_for("document.documentElement.dataset.detail==='12'", limit);
    let id = b.eval("document.getElementById('request-id').textContent");
    assert_eq!(id, manifest[11]["request_id"], "{id}");
    let inputs =
        b.eval("[...document.querySelectorAll('#detail .field .k')].map(k=>k.textContent)");
    assert_eq!(inputs, json!(["prompt", "image_url", "steps"]));
    b.wait_for(loaded, limit);
    b.screenshot(&shot.with_file_name("gallery-25-detail.png"));
    b.key("ArrowRight");
    b.wait_for("document.documentElement.dataset.detail==='17'", limit);
    assert_eq!(
        b.eval("document.getElementById('request-id').textContent"),
        manifest[16]["request_id"]
    );
    let advice = b.eval("document.querySelector('#detail .advice').textContent");
    assert!(advice.as_str().unwrap().contains("fix line 17"), "{advice}");
    b.screenshot(&shot.with_file_name("gallery-25-failed.png"));
    b.key("Escape");
    b.wait_for("!document.documentElement.dataset.detail", limit);

    // The keys alone: the search cleared, the first card focused, Enter opens its detail.
    b.click("#search");
    b.eval("document.getElementById('search').select()");
    b.key("Backspace");
    b.wait_for(
        &format!("document.documentElement.dataset.shown==='{LINES}'"),
        limit,
    );
    b.key("Escape");
    b.key("ArrowRight");
    b.key("ArrowRight");
    b.key("Enter");
    b.wait_for("document.documentElement.dataset.detail==='2'", limit);
    b.key("Escape");
    // The order: last row first (a select's own menu is not drawn headless: its value is set
    // and its change sent as the menu would).
    b.eval("(()=>{const s=document.getElementById('sort');s.value='-row';s.dispatchEvent(new Event('change'))})()");
    b.wait_for(
        &format!("document.querySelector('#grid .card').dataset.line==='{LINES}'"),
        limit,
    );

    // The page of a batch still running reloads itself, keeping its filter.
    let page = std::fs::read_to_string(env.path("out/index.html")).unwrap();
    let running = env.path("out/running.html");
    std::fs::write(
        &running,
        page.replacen("\"done\":true", "\"done\":false", 1),
    )
    .unwrap();
    b.open(&format!("{}#f=failed", file_url(&running)), READY, limit);
    assert_eq!(b.eval("document.documentElement.dataset.refresh"), "10000");
    assert_eq!(b.eval("document.documentElement.dataset.shown"), "3");
    b.eval("window.notReloaded = true");
    b.wait_for(
        "!window.notReloaded && document.documentElement.dataset.rendered==='1'",
        Duration::from_secs(30),
    );
    assert_eq!(b.eval("document.documentElement.dataset.shown"), "3");
    let live = b.eval("document.getElementById('live').textContent");
    assert!(
        live.as_str()
            .unwrap()
            .starts_with("running: this page refreshes"),
        "{live}"
    );
}

/// The figures of the benchmark table (PERFORMANCE.md): the page of a 10,000-row batch (its
/// size, the time `batch report` takes to build it from the store) and the time it takes to
/// open in Chromium (first cards rendered) against a 25-row page in the same run. Run by
/// `scripts/bench-report`.
#[test]
#[ignore = "a benchmark, needs Chromium: scripts/bench-report"]
fn gallery_at_scale() {
    let (env, _) = gallery_batch();
    let small = env.path("out/index.html");
    let big_dir = env.path("big");
    let rows = 10_000u64;
    let db = seed(&env, &big_dir, rows);
    let start = Instant::now();
    env.cmd()
        .args(["batch", "report", "big", "--out"])
        .arg(&big_dir)
        .arg("--store")
        .arg(&db)
        .timeout(DEADLINE)
        .assert()
        .success();
    let build = start.elapsed();
    let big = big_dir.join("index.html");
    let size = std::fs::metadata(&big).unwrap().len();
    let small_size = std::fs::metadata(&small).unwrap().len();
    let mut b = Browser::launch(&runcomfy_testenv::chromium(), DEADLINE);
    let limit = Duration::from_secs(60);
    let mut open = |page: &Path| {
        // The best of 5 (a fresh navigation each time): the page's own figure (navigation
        // start to first cards) and the driver's.
        let mut best = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            b.open("about:blank", "true", limit);
            let wall = b.open(&file_url(page), READY, limit);
            let own = b
                .eval("+document.documentElement.dataset.renderMs")
                .as_f64()
                .unwrap();
            best = (best.0.min(own), best.1.min(wall.as_secs_f64() * 1000.0));
        }
        let cards = b.eval("document.querySelectorAll('#grid .card').length");
        (best, cards)
    };
    let (small_ms, _) = open(&small);
    let (big_ms, cards) = open(&big);
    // Scrolling to the end renders the last rows only.
    b.eval("window.scrollTo(0, document.body.scrollHeight)");
    b.wait_for(
        &format!("!!document.querySelector('.card[data-line=\"{rows}\"]')"),
        limit,
    );
    let after = b.eval("document.querySelectorAll('#grid .card').length");
    println!(
        "gallery: 10,000 rows: page {size} bytes ({:.0} bytes/row; 25 rows {small_size} bytes), built by `batch report` in {:.2} s; first cards in {:.0} ms (page's own clock; {:.0} ms by the driver) vs {:.0} ms ({:.0} ms) for 25 rows: ratio {:.2}; {cards} cards in the DOM on open, {after} after scrolling to the end",
        size as f64 / rows as f64,
        build.as_secs_f64(),
        big_ms.0,
        big_ms.1,
        small_ms.0,
        small_ms.1,
        big_ms.0 / small_ms.0
    );
    assert!(cards.as_u64().unwrap() < 100 && after.as_u64().unwrap() < 100);
}

/// A store with one batch `big` of `rows` rows, every row succeeded with an image saved in
/// `dir/<line>/` (the same file's bytes), a request id, a cost and a run time.
fn seed(env: &Env, dir: &Path, rows: u64) -> PathBuf {
    use runcomfy_store::{ClaimRequest, Finish, NewRow};
    let db = env.path("big.db");
    let location = db.display().to_string();
    let dir = dir.to_path_buf();
    let png = media::png(64, 40);
    env.rt.block_on(async move {
        let store = runcomfy_store::open(&location).await.unwrap();
        let new: Vec<NewRow> = (1..=rows)
            .map(|l| {
                NewRow::new(l, json!({"prompt": prompt(l), "image_url": "https://example.test/in.png", "steps": 20}))
                    .estimated_cost_usd(0.25)
            })
            .collect();
        let batch = store.create_or_open_batch("big", MODEL, new).await.unwrap();
        loop {
            let claim = store
                .claim(&ClaimRequest::new(batch.id, "seed", Duration::from_secs(600), 500))
                .await
                .unwrap();
            if claim.submit.is_empty() {
                break;
            }
            for row in &claim.submit {
                let (key, line) = (row.key, row.batch.map_or(0, |(_, l)| l));
                store.mark_submitting(key, "seed").await.unwrap();
                store.record_submitted(key, &format!("req-{line}")).await.unwrap();
                let url = format!("https://cdn.test/{line}/out.png");
                let file = dir.join(line.to_string()).join("out.png");
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, &png).unwrap();
                store
                    .record_finished(
                        key,
                        &Finish::succeeded(json!({"images": [url]}))
                            .cost_usd(0.25)
                            .run_time(Duration::from_millis(1000 + line % 5000))
                            .wanting([url.as_str()]),
                    )
                    .await
                    .unwrap();
                store.record_output_saved(key, &url, &file).await.unwrap();
            }
        }
    });
    db
}
