//! `runcomfy::download` against the fake server's file route, on real files in a tempdir.

use std::path::Path;

use runcomfy::download::{DownloadError, Downloader, Folder};
use runcomfy::Url;
use runcomfy_fake::{FakeServer, Fault, Lifecycle, Route};
use serde_json::json;

use crate::common::{self, ECHO_ID, SECRET};

const SIZE: usize = 200_000;

/// A server serving `SIZE`-byte output files, and one finished job's id.
async fn files() -> (FakeServer, String) {
    let server = common::builder().serve_outputs(SIZE).start().await.unwrap();
    let id = server.create_job(ECHO_ID, json!({"prompt": "x"}), Lifecycle::new());
    (server, id)
}

fn file_url(server: &FakeServer, id: &str, name: &str) -> Url {
    Url::parse(&format!("{}/_fake/files/{id}/{name}", server.base_url())).unwrap()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn downloader() -> Downloader {
    Downloader::builder().build().unwrap()
}

#[tokio::test]
async fn a_job_output_is_saved_without_the_token() {
    let server = common::builder().serve_outputs(SIZE).start().await.unwrap();
    let client = server.client().unwrap();
    let result = client
        .run_json(ECHO_ID, &json!({"prompt": "a fox"}))
        .await
        .unwrap();
    let output = result.output.unwrap();
    let urls = runcomfy::download::output_urls(&output);
    assert!(!urls.is_empty(), "{output}");
    let dir = tempfile::tempdir().unwrap();
    let saved = downloader().save_all(&output, dir.path()).await.unwrap();
    assert_eq!(saved.len(), urls.len());
    for (file, url) in saved.iter().zip(&urls) {
        assert_eq!(&file.url, url);
        assert_eq!(file.path.parent(), Some(dir.path()));
        let name = url.path_segments().unwrap().next_back().unwrap();
        let id = result.request_id.as_str();
        let want = server.output_bytes(id, name).unwrap();
        assert_eq!(std::fs::read(&file.path).unwrap(), want);
        assert_eq!(file.bytes, want.len() as u64);
    }
    let file_requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::File)
        .collect();
    assert_eq!(file_requests.len(), urls.len());
    for r in &file_requests {
        assert_eq!(r.header("authorization"), None);
        assert!(r.headers.iter().all(|(_, v)| !v.contains(SECRET)));
    }
}

#[tokio::test]
async fn a_cut_transfer_resumes_with_a_range() {
    let (server, id) = files().await;
    server.inject(Route::File, Fault::CutBody { after: 70_000 });
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&server, &id, "clip.mp4");
    let mut retried = 0;
    let saved = downloader()
        .save_with(&url, dir.path(), |e| {
            if matches!(e, runcomfy::download::Event::Retrying { .. }) {
                retried += 1;
            }
        })
        .await
        .unwrap();
    assert_eq!(retried, 1);
    assert_eq!(saved.path, dir.path().join("clip.mp4"));
    assert_eq!(
        std::fs::read(&saved.path).unwrap(),
        server.output_bytes(&id, "clip.mp4").unwrap()
    );
    let ranges: Vec<Option<String>> = server
        .requests()
        .iter()
        .filter(|r| r.route == Route::File)
        .map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, [None, Some("bytes=70000-".to_owned())]);
    assert_eq!(names(dir.path()), ["clip.mp4"]);
}

#[tokio::test]
async fn a_refused_range_starts_the_file_over() {
    let (server, id) = files().await;
    server.inject(Route::File, Fault::CutBody { after: 50_000 });
    // The resumed request is refused (416): the next attempt fetches the whole file.
    server.inject(Route::File, Fault::status(416));
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&server, &id, "clip.mp4");
    let saved = downloader().save(&url, dir.path()).await.unwrap();
    assert_eq!(
        std::fs::read(&saved.path).unwrap(),
        server.output_bytes(&id, "clip.mp4").unwrap()
    );
    let ranges: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, [None, Some("bytes=50000-".to_owned()), None]);
    assert_eq!(names(dir.path()), ["clip.mp4"]);
}

#[tokio::test]
async fn a_transfer_cut_every_time_fails_and_leaves_nothing() {
    let (server, id) = files().await;
    server.inject_times(Route::File, Fault::CutBody { after: 1_000 }, 10);
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&server, &id, "clip.mp4");
    let d = Downloader::builder().retries(2).build().unwrap();
    let err = d.save(&url, dir.path()).await.unwrap_err();
    assert!(
        matches!(err, DownloadError::Transfer { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(server.count(Route::File), 3);
    // Each attempt went on from where the previous one stopped.
    let ranges: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(
        ranges,
        [
            None,
            Some("bytes=1000-".to_owned()),
            Some("bytes=2000-".to_owned())
        ]
    );
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
}

#[tokio::test]
async fn two_saves_of_one_name_keep_both_files() {
    let (server, id) = files().await;
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&server, &id, "clip.mp4");
    // Two downloaders, as two processes would have.
    let (a, b) = (downloader(), downloader());
    let (ra, rb) = tokio::join!(a.save(&url, dir.path()), b.save(&url, dir.path()));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_ne!(ra.path, rb.path);
    assert_eq!(names(dir.path()), ["clip-1.mp4", "clip.mp4"]);
    let want = server.output_bytes(&id, "clip.mp4").unwrap();
    for p in [&ra.path, &rb.path] {
        assert_eq!(std::fs::read(p).unwrap(), want);
    }
    // An existing file is never replaced.
    std::fs::write(dir.path().join("clip-2.mp4"), b"mine").unwrap();
    let third = a.save(&url, dir.path()).await.unwrap();
    assert_eq!(third.path, dir.path().join("clip-3.mp4"));
    assert_eq!(
        std::fs::read(dir.path().join("clip-2.mp4")).unwrap(),
        b"mine"
    );
}

#[tokio::test]
async fn a_file_published_and_not_recorded_is_never_saved_twice() {
    let (server, id) = files().await;
    let url = file_url(&server, &id, "clip.mp4");
    let want = server.output_bytes(&id, "clip.mp4").unwrap();
    let d = downloader();

    // A folder of one job: the file a killed saver published is taken without a fetch.
    let own = tempfile::tempdir().unwrap();
    let first = d.save(&url, own.path()).await.unwrap();
    let fetches = server.count(Route::File);
    let again = d
        .save_once(&url, own.path(), &[], Folder::Own)
        .await
        .unwrap();
    assert_eq!(again.path, first.path);
    assert_eq!(server.count(Route::File), fetches, "nothing fetched");
    // Once recorded, it is another output's file: the next save of the name fetches.
    let second = d
        .save_once(
            &url,
            own.path(),
            std::slice::from_ref(&first.path),
            Folder::Own,
        )
        .await
        .unwrap();
    assert_eq!(second.path, own.path().join("clip-1.mp4"));
    assert_eq!(names(own.path()), ["clip-1.mp4", "clip.mp4"]);

    // A shared folder: fetched, and the identical earlier copy kept instead of a second one.
    let shared = tempfile::tempdir().unwrap();
    let first = d.save(&url, shared.path()).await.unwrap();
    let fetches = server.count(Route::File);
    let again = d
        .save_once(&url, shared.path(), &[], Folder::Shared)
        .await
        .unwrap();
    assert_eq!(again.path, first.path);
    assert!(
        server.count(Route::File) > fetches,
        "a shared folder's file is fetched"
    );
    assert_eq!(names(shared.path()), ["clip.mp4"]);
    assert_eq!(std::fs::read(&again.path).unwrap(), want);
    // Another file under the name (other bytes) is left alone: both are kept.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("clip.mp4"), b"someone else's").unwrap();
    let saved = d
        .save_once(&url, other.path(), &[], Folder::Shared)
        .await
        .unwrap();
    assert_eq!(saved.path, other.path().join("clip-1.mp4"));
    assert_eq!(names(other.path()), ["clip-1.mp4", "clip.mp4"]);
    // An identical earlier copy that is recorded (another output of the job) is kept apart.
    let kept = d
        .save_once(
            &url,
            shared.path(),
            std::slice::from_ref(&first.path),
            Folder::Shared,
        )
        .await
        .unwrap();
    assert_eq!(kept.path, shared.path().join("clip-1.mp4"));
}

#[tokio::test]
async fn a_file_over_the_cap_is_an_error_and_leaves_nothing() {
    let (server, id) = files().await;
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&server, &id, "big.mp4");
    let d = Downloader::builder().max_bytes(1_000).build().unwrap();
    let err = d.save(&url, dir.path()).await.unwrap_err();
    match &err {
        DownloadError::TooLarge {
            size, max_bytes, ..
        } => {
            assert_eq!(*size, Some(SIZE as u64));
            assert_eq!(*max_bytes, 1_000);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("over the cap of 1000 bytes"),
        "{err}"
    );
    assert!(names(dir.path()).is_empty());
    // Exactly at the cap is accepted.
    let d = Downloader::builder()
        .max_bytes(SIZE as u64)
        .build()
        .unwrap();
    assert_eq!(d.save(&url, dir.path()).await.unwrap().bytes, SIZE as u64);
}

#[tokio::test]
async fn hostile_names_stay_in_the_folder() {
    let (server, id) = files().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let long = "a".repeat(400) + ".png";
    let cases = [
        ("..%2F..%2Fx", "_.._x"),
        ("%2Fabs%2Fpath.png", "_abs_path.png"),
        ("..%5Cwin.png", "_win.png"),
        ("a%0Ab%1B%5B2J%00.png", "a_b__2J_.png"),
        (".hidden", "hidden"),
        ("...", "output"),
        (long.as_str(), ""),
    ];
    let d = downloader();
    for (raw, want) in cases {
        let url = file_url(&server, &id, raw);
        let saved = d.save(&url, &out).await.unwrap();
        assert_eq!(saved.path.parent(), Some(out.as_path()), "{raw}");
        let name = saved
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if want.is_empty() {
            assert_eq!(name.len(), 120);
            assert!(name.ends_with(".png"));
        } else {
            assert_eq!(name, want, "{raw}");
        }
        assert_eq!(saved.bytes, SIZE as u64);
    }
    // Nothing was written outside the folder.
    assert_eq!(names(dir.path()), ["out"]);
    assert_eq!(names(&out).len(), cases.len());
}

#[tokio::test]
async fn errors_name_the_url_without_its_query() {
    let (server, _id) = files().await;
    let dir = tempfile::tempdir().unwrap();
    let url = Url::parse(&format!(
        "{}/_fake/files/no-such-job/a.mp4?X-Signature=s3cret",
        server.base_url()
    ))
    .unwrap();
    let err = downloader().save(&url, dir.path()).await.unwrap_err();
    assert!(
        matches!(err, DownloadError::Status { status: 404, .. }),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("/_fake/files/no-such-job/a.mp4"), "{shown}");
}

#[tokio::test]
async fn save_all_tries_every_file_and_lists_those_saved() {
    let (server, id) = files().await;
    let dir = tempfile::tempdir().unwrap();
    let good = file_url(&server, &id, "a.png");
    let bad = file_url(&server, "no-such-job", "b.png");
    let output = json!({"images": [good.as_str(), bad.as_str()], "seed": 1});
    let err = downloader()
        .save_all(&output, dir.path())
        .await
        .unwrap_err();
    let DownloadError::Incomplete { saved, errors } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].url, good);
    assert_eq!(saved[0].path, dir.path().join("a.png"));
    assert_eq!(errors.len(), 1);
    assert_eq!(err.to_string(), "1 of 2 output files could not be saved");
}
