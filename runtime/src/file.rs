//! File inputs: the value of every input field the schema marks as a file (`format`
//! `image_uri`, `video_uri`, `audio_uri`, `uri` and the list forms `image_uris`, ...).
//!
//! A [`FileInput`] is one of:
//! - a URL (or any string, a `data:` URI included), sent as given: [`FileInput::url`], or
//!   `From<&str>`, `From<String>`, `From<Url>`;
//! - a local file, sent as a `data:<media type>;base64,...` URI: [`FileInput::path`] (read
//!   when the request is built) or [`FileInput::read`] (read now);
//! - bytes in memory with their media type, sent as a `data:` URI: [`FileInput::bytes`].
//!
//! **When a path is read.** [`FileInput::path`] does no I/O: the generated `validate()`, which
//! the client runs before any request, checks that the file exists and its size (a missing or
//! unreadable file is a [`Violation`](crate::Violation) naming the field, never a panic), and
//! the file is read when the request body is serialized (an error then names the path).
//! [`FileInput::read`] reads the file at once and returns an [`std::io::Error`]-carrying
//! [`FileError`] naming the path.
//!
//! **Size limits.** Before sending, `validate()` checks every local file or `data:` URI (a
//! remote URL is not fetched) against the schema's `file_size_mb` rule when it has one, and
//! against the API's documented guidance for its kind ([`FileKind::max_bytes`]: images 50
//! MiB, other files 100 MiB), and the local files of one request together against
//! [`MAX_REQUEST_FILE_BYTES`] (100 MiB; base64 makes the body a third larger). A megabyte here
//! is 1024 × 1024 bytes.
//!
//! Deserializing reads any string into the URL form, unchanged (`FileInput::url`), so a
//! generated `Input` read from JSON serializes back to the same JSON.
//!
//! ```
//! use runcomfy::FileInput;
//!
//! let remote = FileInput::from("https://example.com/cat.png");
//! assert_eq!(remote.as_url(), Some("https://example.com/cat.png"));
//!
//! let png = FileInput::bytes(vec![0x89, b'P', b'N', b'G'], "image/png");
//! assert_eq!(serde_json::to_value(&png).unwrap(), "data:image/png;base64,iVBORw==");
//!
//! // A local file: read when the request is built, checked by `validate()` before.
//! let local = FileInput::path("photos/cat.jpg");
//! assert_eq!(local.as_url(), None);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use url::Url;

/// The largest total size of the local files (paths, bytes, `data:` URIs) one request may
/// carry: 100 MiB, the API's guidance for its largest inputs (videos). The JSON body is a
/// third larger (base64).
pub const MAX_REQUEST_FILE_BYTES: u64 = 100 * MIB;

const MIB: u64 = 1024 * 1024;

/// The value of a file input field; see the [module docs](self).
#[derive(Clone, PartialEq, Eq)]
pub struct FileInput {
    repr: Repr,
}

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// Sent as given.
    Uri(String),
    /// Read when serialized.
    Path {
        path: PathBuf,
        media_type: Option<String>,
    },
    Bytes {
        bytes: Vec<u8>,
        media_type: String,
    },
}

/// Why a file input could not be read or sized.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read (missing, a folder, no permission, ...).
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The path names something other than a file.
    #[error("{} is not a file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
}

/// What kind of file a field takes, from its schema `format`: it decides the size limit
/// when the schema states none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// `image_uri`, `image_uris`.
    Image,
    /// `video_uri`, `video_uris`.
    Video,
    /// `audio_uri`, `audio_uris`.
    Audio,
    /// `uri` and any other.
    Any,
}

impl FileKind {
    /// The kind of a schema `format` (`image_uri` → `Image`, `video_uris` → `Video`, ...).
    pub fn from_format(format: &str) -> FileKind {
        match format.trim_end_matches('s') {
            "image_uri" => FileKind::Image,
            "video_uri" => FileKind::Video,
            "audio_uri" => FileKind::Audio,
            _ => FileKind::Any,
        }
    }

    /// The kind's name (`image`, `video`, `audio`, `file`).
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Image => "image",
            FileKind::Video => "video",
            FileKind::Audio => "audio",
            FileKind::Any => "file",
        }
    }

    /// The largest local file of this kind sent when the schema states no limit: the API's
    /// guidance, 50 MiB for images and 100 MiB for videos; 100 MiB for other files too.
    pub fn max_bytes(self) -> u64 {
        match self {
            FileKind::Image => 50 * MIB,
            _ => 100 * MIB,
        }
    }
}

impl FileInput {
    /// A URL, or any string the API takes for a file (a `data:` URI), sent as given.
    pub fn url(url: impl Into<String>) -> FileInput {
        FileInput {
            repr: Repr::Uri(url.into()),
        }
    }

    /// A local file, sent as a `data:` URI with the media type its extension implies
    /// ([`media_type_of`]). Nothing is read now: `validate()` checks the file and its size,
    /// and it is read when the request is built.
    pub fn path(path: impl Into<PathBuf>) -> FileInput {
        FileInput {
            repr: Repr::Path {
                path: path.into(),
                media_type: None,
            },
        }
    }

    /// [`FileInput::path`] with the media type given (for a file whose extension says
    /// nothing).
    pub fn path_with_type(path: impl Into<PathBuf>, media_type: impl Into<String>) -> FileInput {
        FileInput {
            repr: Repr::Path {
                path: path.into(),
                media_type: Some(media_type.into()),
            },
        }
    }

    /// A local file read now into memory (media type from its extension).
    ///
    /// ```
    /// let err = runcomfy::FileInput::read("no/such/file.png").unwrap_err();
    /// assert_eq!(err.to_string(), "cannot read no/such/file.png");
    /// ```
    pub fn read(path: impl AsRef<Path>) -> Result<FileInput, FileError> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        Ok(FileInput::bytes(bytes, media_type_of(path)))
    }

    /// Bytes with their media type (`image/png`, `video/mp4`, ...), sent as a `data:` URI.
    pub fn bytes(bytes: impl Into<Vec<u8>>, media_type: impl Into<String>) -> FileInput {
        FileInput {
            repr: Repr::Bytes {
                bytes: bytes.into(),
                media_type: media_type.into(),
            },
        }
    }

    /// The string given to [`FileInput::url`] (or deserialized), when this is one.
    pub fn as_url(&self) -> Option<&str> {
        match &self.repr {
            Repr::Uri(s) => Some(s),
            _ => None,
        }
    }

    /// The local path, when this is one.
    pub fn as_path(&self) -> Option<&Path> {
        match &self.repr {
            Repr::Path { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The size in bytes of the file this sends inline: a path's size on disk (without
    /// reading it), the bytes' length, a `data:` URI's decoded length; `None` for a remote URL.
    pub fn inline_size(&self) -> Result<Option<u64>, FileError> {
        match &self.repr {
            Repr::Uri(s) => Ok(data_uri_size(s)),
            Repr::Bytes { bytes, .. } => Ok(Some(bytes.len() as u64)),
            Repr::Path { path, .. } => match std::fs::metadata(path) {
                Ok(m) if m.is_file() => Ok(Some(m.len())),
                Ok(_) => Err(FileError::NotAFile { path: path.clone() }),
                Err(source) => Err(FileError::Read {
                    path: path.clone(),
                    source,
                }),
            },
        }
    }

    /// The string sent to the API: the URL as given, or a `data:` URI (a path is read now).
    pub fn to_wire(&self) -> Result<Cow<'_, str>, FileError> {
        match &self.repr {
            Repr::Uri(s) => Ok(Cow::Borrowed(s)),
            Repr::Bytes { bytes, media_type } => Ok(Cow::Owned(data_uri(media_type, bytes))),
            Repr::Path { path, media_type } => {
                let bytes = read_file(path)?;
                let media_type = media_type.as_deref().unwrap_or(media_type_of(path));
                Ok(Cow::Owned(data_uri(media_type, &bytes)))
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(FileError::NotAFile {
                path: path.to_owned(),
            })
        }
        _ => {}
    }
    std::fs::read(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })
}

fn data_uri(media_type: &str, bytes: &[u8]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!("data:{media_type};base64,{data}")
}

/// The decoded size of a base64 `data:` URI, from its length (no decoding); `None` for
/// anything else.
fn data_uri_size(s: &str) -> Option<u64> {
    if !s.get(..5)?.eq_ignore_ascii_case("data:") {
        return None;
    }
    let (meta, data) = s[5..].split_once(',')?;
    if meta.to_ascii_lowercase().ends_with(";base64") {
        let data = data.trim_end().trim_end_matches('=');
        Some(data.len() as u64 * 3 / 4)
    } else {
        Some(data.len() as u64)
    }
}

impl fmt::Debug for FileInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            // A data URI is shown by its size, not its megabytes of base64.
            Repr::Uri(s) => match data_uri_size(s) {
                Some(n) => write!(f, "FileInput::url(<data: URI of {n} bytes>)"),
                None => f.debug_tuple("FileInput::url").field(s).finish(),
            },
            Repr::Path { path, .. } => f.debug_tuple("FileInput::path").field(path).finish(),
            Repr::Bytes { bytes, media_type } => {
                write!(
                    f,
                    "FileInput::bytes(<{} bytes>, {media_type:?})",
                    bytes.len()
                )
            }
        }
    }
}

impl From<&str> for FileInput {
    fn from(url: &str) -> Self {
        FileInput::url(url)
    }
}

impl From<String> for FileInput {
    fn from(url: String) -> Self {
        FileInput::url(url)
    }
}

impl From<&String> for FileInput {
    fn from(url: &String) -> Self {
        FileInput::url(url.as_str())
    }
}

impl From<Url> for FileInput {
    fn from(url: Url) -> Self {
        FileInput::url(String::from(url))
    }
}

impl From<&Url> for FileInput {
    fn from(url: &Url) -> Self {
        FileInput::url(url.as_str())
    }
}

impl From<PathBuf> for FileInput {
    fn from(path: PathBuf) -> Self {
        FileInput::path(path)
    }
}

impl From<&Path> for FileInput {
    fn from(path: &Path) -> Self {
        FileInput::path(path)
    }
}

impl serde::Serialize for FileInput {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.to_wire() {
            Ok(wire) => s.serialize_str(&wire),
            Err(e) => Err(serde::ser::Error::custom(match e.source_io() {
                Some(io) => format!("{e}: {io}"),
                None => e.to_string(),
            })),
        }
    }
}

impl FileError {
    fn source_io(&self) -> Option<&std::io::Error> {
        match self {
            FileError::Read { source, .. } => Some(source),
            FileError::NotAFile { .. } => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for FileInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(FileInput::url)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for FileInput {
    fn schema_name() -> Cow<'static, str> {
        "FileInput".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string"})
    }
}

/// The media type of a file, from its extension (`application/octet-stream` when unknown).
///
/// ```
/// use std::path::Path;
/// assert_eq!(runcomfy::file::media_type_of(Path::new("a/B.PNG")), "image/png");
/// assert_eq!(runcomfy::file::media_type_of(Path::new("noext")), "application/octet-stream");
/// ```
pub fn media_type_of(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" | "jfif" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "avif" => "image/avif",
        "svg" => "image/svg+xml",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "avi" => "video/x-msvideo",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" | "oga" => "audio/ogg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "opus" => "audio/opus",
        "json" => "application/json",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The size rule of one file field, as generated code states it for
/// [`Validator::file`](crate::validate::Validator::file).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileRule {
    /// The field's kind (its default limit).
    pub kind: FileKind,
    /// The schema's `file_size_mb` limit, in MiB.
    pub max_mb: Option<f64>,
    /// `file_size_mb<=` (else `<`).
    pub inclusive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uri_sizes() {
        for n in 0..20usize {
            let bytes = vec![7u8; n];
            let uri = data_uri("image/png", &bytes);
            assert_eq!(data_uri_size(&uri), Some(n as u64), "{uri}");
        }
        assert_eq!(data_uri_size("DATA:text/plain,hello"), Some(5));
        assert_eq!(data_uri_size("https://x/y.png"), None);
        assert_eq!(data_uri_size("data"), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(FileKind::from_format("image_uris"), FileKind::Image);
        assert_eq!(FileKind::from_format("video_uri"), FileKind::Video);
        assert_eq!(FileKind::from_format("uri"), FileKind::Any);
    }

    #[test]
    fn paths_are_read_when_serialized() {
        let dir = std::env::temp_dir().join(format!("runcomfy-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        std::fs::write(&p, b"hi").unwrap();
        let f = FileInput::path(&p);
        assert_eq!(f.inline_size().unwrap(), Some(2));
        assert_eq!(f.to_wire().unwrap(), "data:text/plain;base64,aGk=");
        let missing = FileInput::path(dir.join("missing.png"));
        let err = serde_json::to_string(&missing).unwrap_err().to_string();
        assert!(
            err.contains("cannot read") && err.contains("missing.png"),
            "{err}"
        );
        assert!(matches!(
            FileInput::path(&dir).inline_size(),
            Err(FileError::NotAFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
