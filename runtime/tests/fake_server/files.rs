//! File inputs of generated models (`FileInput`): URLs, local paths and bytes, as the fake
//! server receives them, and the size checks that keep a request from being sent.

use std::fs::File;
use std::path::Path;

use base64::Engine as _;
use runcomfy::models::bytedance::seedream_5_0_pro::image_to_image as i2i;
use runcomfy::models::runwayml::runway_aleph_2::video_to_video as v2v;
use runcomfy::{Error, FileInput, Rule, Validate};
use runcomfy_fake::FakeServer;

const MIB: u64 = 1024 * 1024;

/// A file of `size` bytes without writing them (sparse where the file system allows).
fn sized_file(path: &Path, size: u64) {
    File::create(path).unwrap().set_len(size).unwrap();
}

fn decode(data_uri: &str, media_type: &str) -> Vec<u8> {
    let prefix = format!("data:{media_type};base64,");
    let data = data_uri.strip_prefix(&prefix).expect(data_uri);
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap()
}

#[tokio::test]
async fn paths_bytes_and_urls_go_as_the_api_wants() {
    let server = FakeServer::start_with_all_models().await.unwrap();
    let client = server.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.MP4");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    std::fs::write(&clip, &bytes).unwrap();

    let input = v2v::Input::new(FileInput::path(&clip), "make it snow");
    v2v::endpoint(&client).submit(&input).await.unwrap();
    let body = server.requests()[0].json().unwrap();
    let sent = body["video_url"].as_str().unwrap();
    assert_eq!(decode(sent, "video/mp4"), bytes);

    let images = vec![
        FileInput::from("https://example.com/a.png"),
        FileInput::bytes(vec![1, 2, 3], "image/webp"),
    ];
    let input = i2i::Input::new("a cat", images);
    i2i::endpoint(&client).submit(&input).await.unwrap();
    let body = server.requests()[1].json().unwrap();
    assert_eq!(
        body["image"],
        serde_json::json!(["https://example.com/a.png", "data:image/webp;base64,AQID"])
    );
}

#[tokio::test]
async fn a_file_over_the_schema_limit_is_refused_before_sending() {
    let server = FakeServer::start_with_all_models().await.unwrap();
    let client = server.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The schema says `file_size_mb<` 16.
    let big = dir.path().join("big.mp4");
    sized_file(&big, 16 * MIB);
    let input = v2v::Input::new(FileInput::path(&big), "x");
    let err = v2v::endpoint(&client).submit(&input).await.unwrap_err();
    let Error::Validation { errors, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(errors.violations.len(), 1);
    let v = &errors.violations[0];
    assert_eq!(v.path, "/video_url");
    assert_eq!(v.rule, Rule::FileSizeBelow(16.0));
    assert_eq!(v.value, serde_json::json!(16.0));
    assert!(
        err.to_string()
            .contains("/video_url: the file must be smaller than 16 MB (got 16.0)"),
        "{err}"
    );
    assert_eq!(server.submits(), 0);

    // Just under the limit passes.
    let ok = dir.path().join("ok.mp4");
    sized_file(&ok, 16 * MIB - 1);
    assert!(v2v::Input::new(FileInput::path(&ok), "x")
        .validate()
        .is_ok());
    // A remote URL is not fetched, whatever its size.
    assert!(v2v::Input::new("https://example.com/huge.mp4", "x")
        .validate()
        .is_ok());
}

#[tokio::test]
async fn a_missing_file_is_a_violation_naming_it_and_nothing_is_sent() {
    let server = FakeServer::start_with_all_models().await.unwrap();
    let client = server.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.mp4");
    let input = v2v::Input::new(FileInput::path(&missing), "x");
    let err = v2v::endpoint(&client).submit(&input).await.unwrap_err();
    let Error::Validation { errors, .. } = &err else {
        panic!("{err:?}");
    };
    let v = &errors.violations[0];
    assert_eq!(v.path, "/video_url");
    assert!(matches!(&v.rule, Rule::ReadableFile(why) if why.contains("missing.mp4")));
    assert_eq!(v.value, serde_json::json!(missing.display().to_string()));
    assert_eq!(server.submits(), 0);

    // The file disappears between validation and sending: an encode error naming it, no
    // request, no panic.
    let gone = dir.path().join("gone.mp4");
    std::fs::write(&gone, b"x").unwrap();
    let input = v2v::Input::new(FileInput::path(&gone), "x");
    assert!(input.validate().is_ok());
    std::fs::remove_file(&gone).unwrap();
    let err = serde_json::to_string(&input).unwrap_err();
    assert!(err.to_string().contains("gone.mp4"), "{err}");
    let err = FileInput::read(&gone).unwrap_err();
    assert!(err.to_string().contains("gone.mp4"), "{err}");
}

#[tokio::test]
async fn the_files_of_one_request_have_a_total_cap() {
    let dir = tempfile::tempdir().unwrap();
    // Each image is under its 30 MB rule; four of them pass the 100 MB request cap.
    let images: Vec<FileInput> = (0..4)
        .map(|i| {
            let p = dir.path().join(format!("{i}.png"));
            sized_file(&p, 29 * MIB);
            FileInput::path(p)
        })
        .collect();
    let errors = i2i::Input::new("x", images.clone()).validate().unwrap_err();
    assert_eq!(errors.violations.len(), 1, "{errors}");
    assert_eq!(errors.violations[0].path, "");
    assert_eq!(
        errors.violations[0].rule,
        Rule::RequestFileSize((runcomfy::file::MAX_REQUEST_FILE_BYTES / MIB) as f64)
    );
    assert!(i2i::Input::new("x", images[..3].to_vec())
        .validate()
        .is_ok());
    // A data: URI counts by its decoded size, so an oversized one is refused too.
    let one = FileInput::bytes(vec![0u8; 30 * MIB as usize], "image/png");
    let as_uri = FileInput::url(one.to_wire().unwrap().into_owned());
    let errors = i2i::Input::new("x", vec![as_uri]).validate().unwrap_err();
    assert_eq!(errors.violations[0].path, "/image/0");
    assert_eq!(errors.violations[0].rule, Rule::FileSizeBelow(30.0));
}

#[test]
fn a_url_string_deserializes_into_the_url_form() {
    let f: FileInput = serde_json::from_str("\"https://example.com/a.png?x=1\"").unwrap();
    assert_eq!(f.as_url(), Some("https://example.com/a.png?x=1"));
    assert_eq!(
        serde_json::to_string(&f).unwrap(),
        "\"https://example.com/a.png?x=1\""
    );
    // Debug shows a data: URI by its size, not its content.
    let d = FileInput::url("data:image/png;base64,AQID");
    assert_eq!(format!("{d:?}"), "FileInput::url(<data: URI of 3 bytes>)");
}
