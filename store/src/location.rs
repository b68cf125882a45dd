//! Where a store lives: parsing the store URL, and printing it without its password.

use std::fmt;
use std::path::PathBuf;

use crate::error::StoreError;

/// A store's location, parsed from a URL or a path.
///
/// `Debug` and `Display` never show a password:
///
/// ```
/// let location = runcomfy_store::Location::parse("postgres://batch:s3cret@db.local/jobs").unwrap();
/// assert_eq!(location.to_string(), "postgres://batch:***@db.local/jobs");
/// assert!(!format!("{location:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A SQLite file (`sqlite:///path/jobs.db`, `sqlite:jobs.db` or a plain path).
    Sqlite(PathBuf),
    /// A PostgreSQL server (`postgres://`, `postgresql://`, or a libpq `key=value` string such
    /// as `host=db.local dbname=jobs user=batch password=…`).
    Postgres(Secret),
}

impl Location {
    /// Parses a store URL or a file path.
    ///
    /// Accepted: `postgres://…` and `postgresql://…` (libpq URL syntax), a libpq `key=value`
    /// connection string (`host=h dbname=d password=…`), `sqlite://PATH`
    /// (`sqlite:///abs/path.db` is the absolute path `/abs/path.db`), `sqlite:PATH`, or a
    /// path with no scheme, taken as a SQLite file.
    ///
    /// A path that starts like a `key=value` string but names no PostgreSQL connection
    /// keyword (`x=1.db`) is refused as ambiguous: write it `sqlite:x=1.db` or `./x=1.db`.
    pub fn parse(text: &str) -> Result<Location, StoreError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(StoreError::BadLocation {
                location: String::new(),
                reason: "empty store location".into(),
            });
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => Ok(Location::Postgres(Secret(text.to_owned()))),
                "sqlite" | "file" if !rest.is_empty() => Ok(Location::Sqlite(PathBuf::from(rest))),
                "sqlite" | "file" => Err(StoreError::BadLocation {
                    location: text.to_owned(),
                    reason: "no file path after the scheme".into(),
                }),
                _ => Err(StoreError::BadLocation {
                    location: format!("{scheme}://…"),
                    reason: "unknown scheme: use postgres://, sqlite:// or a file path".into(),
                }),
            };
        }
        if let Some(rest) = text.strip_prefix("sqlite:") {
            return Ok(Location::Sqlite(PathBuf::from(rest)));
        }
        if let Some((scheme, _)) = text.split_once(':') {
            if matches!(
                scheme.to_ascii_lowercase().as_str(),
                "postgres" | "postgresql"
            ) {
                return Err(StoreError::BadLocation {
                    location: redact(text),
                    reason: "a PostgreSQL location is a postgres:// URL or a key=value string"
                        .into(),
                });
            }
        }
        if let Some(key) = leading_key(text) {
            if !LIBPQ_KEYWORDS.contains(&key.to_ascii_lowercase().as_str()) {
                return Err(StoreError::BadLocation {
                    location: redact(text),
                    reason: format!(
                        "it reads as a key=value connection string, but {key:?} is not a PostgreSQL connection keyword; a SQLite file whose name holds `=` is written sqlite:PATH or ./PATH"
                    ),
                });
            }
            return Ok(Location::Postgres(Secret(text.to_owned())));
        }
        Ok(Location::Sqlite(PathBuf::from(text)))
    }
}

/// The keywords of a libpq connection string (PostgreSQL 17's list).
const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// The key of a text that starts like a `key=value` string: a word of letters, digits and
/// `_` (not starting with a digit), then `=` after optional blanks.
fn leading_key(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let key = &text[..end];
    let starts_well = key.chars().next().is_some_and(|c| !c.is_ascii_digit());
    (starts_well && text[end..].trim_start().starts_with('=')).then_some(key)
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Location::Postgres(url) => fmt::Display::fmt(url, f),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Location::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
        }
    }
}

/// A connection string that may carry a password: printed only redacted.
///
/// The full text is reachable only inside this crate, where it is handed to the driver.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The full text, password included: for the database driver only.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact(&self.0))
    }
}

/// `text` with every password replaced by `***`: the one in the URL's user info
/// (`user:password@`) and any `password=` parameter.
///
/// The user info is taken up to the last `@`, so a password with an unescaped `/`, `?`, `#`
/// or `@` is still hidden whole (over-hiding is the safe side).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let rest = match text.find("://") {
        Some(i) => {
            out.push_str(&text[..i + 3]);
            &text[i + 3..]
        }
        None => text,
    };
    let rest = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    redact_parameters(rest, &mut out);
    out
}

/// Copies `text` to `out` with the value of every `password` parameter (any case, in a
/// query string or a libpq `key = value` list, blanks around `=` allowed, a value in single
/// quotes with `\'` escapes hidden whole) replaced by `***`.
fn redact_parameters(text: &str, out: &mut String) {
    const KEY: &str = "password";
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(KEY) {
        let start = from + found;
        let after_key = start + KEY.len();
        from = after_key;
        let at_boundary = start == 0
            || matches!(
                bytes[start - 1],
                b'?' | b'&' | b' ' | b'\t' | b'\n' | b'\r' | b';'
            );
        if !at_boundary {
            continue;
        }
        let mut i = after_key;
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        let value_start = i;
        let value_end = if bytes.get(i) == Some(&b'\'') {
            // A quoted value ends at the first quote not escaped by a backslash (or the end).
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            (i + 1).min(bytes.len())
        } else {
            text[value_start..]
                .find(['&', ' ', '\t', '\n', '\r', ';', '#'])
                .map_or(text.len(), |n| value_start + n)
        };
        out.push_str(&text[copied..value_start]);
        out.push_str("***");
        copied = value_end;
        from = value_end;
    }
    out.push_str(&text[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_wherever_they_are() {
        let cases = [
            ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
            (
                "postgresql://u:p%40w@h:5433/db?sslmode=disable",
                "postgresql://u:***@h:5433/db?sslmode=disable",
            ),
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p?s#s@h/db", "postgres://u:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?user=u&password=pw&x=1",
                "postgres://h/db?user=u&password=***&x=1",
            ),
            (
                "postgres://h/db?PassWord=pw",
                "postgres://h/db?PassWord=***",
            ),
            (
                "host=h password=pw dbname=d",
                "host=h password=*** dbname=d",
            ),
            (
                "postgres://h/db?oldpassword=x",
                "postgres://h/db?oldpassword=x",
            ),
            ("postgres://:pw@h/db", "postgres://:***@h/db"),
            (
                "host=h password = 'a b\\' c' dbname=d",
                "host=h password = *** dbname=d",
            ),
            ("host=h PASSWORD=pw", "host=h PASSWORD=***"),
            ("password='unterminated", "password=***"),
            (
                "host=h\tpassword=pw\tport=5",
                "host=h\tpassword=***\tport=5",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "{input}");
        }
    }

    #[test]
    fn locations_parse_by_scheme() {
        assert_eq!(
            Location::parse("sqlite:///var/jobs.db").unwrap(),
            Location::Sqlite("/var/jobs.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:jobs.db").unwrap(),
            Location::Sqlite("jobs.db".into())
        );
        assert_eq!(
            Location::parse("./x/jobs.db").unwrap(),
            Location::Sqlite("./x/jobs.db".into())
        );
        assert!(matches!(
            Location::parse("postgresql://h/db").unwrap(),
            Location::Postgres(_)
        ));
        let err = Location::parse("mysql://u:pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown scheme") && !err.contains("pw"),
            "{err}"
        );
        for libpq in [
            "host=127.0.0.1 port=1 password=s3cret dbname=x",
            "dbname = jobs",
            "user=batch host=/var/run/postgresql",
        ] {
            let location = Location::parse(libpq).unwrap();
            assert!(matches!(location, Location::Postgres(_)), "{libpq}");
            assert!(!location.to_string().contains("s3cret"), "{location}");
        }
        for ambiguous in ["x=1.db", "jobs = 2", "postgres:dbname=x password=pw"] {
            let err = Location::parse(ambiguous).unwrap_err().to_string();
            assert!(err.contains("PostgreSQL") && !err.contains("pw"), "{err}");
        }
        assert_eq!(
            Location::parse("./x=1.db").unwrap(),
            Location::Sqlite("./x=1.db".into())
        );
        assert!(Location::parse("  ").is_err());
        assert!(Location::parse("sqlite://").is_err());
    }

    #[test]
    fn debug_and_display_hide_the_password() {
        let location = Location::parse("postgres://user:hunter2@localhost/db").unwrap();
        for text in [
            format!("{location}"),
            format!("{location:?}"),
            format!("{location:#?}"),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("localhost"), "{text}");
        }
    }
}
