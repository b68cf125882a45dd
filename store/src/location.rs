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
    /// A PostgreSQL server (`postgres://` or `postgresql://`).
    Postgres(Secret),
}

impl Location {
    /// Parses a store URL or a file path.
    ///
    /// Accepted: `postgres://…` and `postgresql://…` (libpq URL syntax), `sqlite://PATH`
    /// (`sqlite:///abs/path.db` is the absolute path `/abs/path.db`), `sqlite:PATH`, or a
    /// path with no scheme, taken as a SQLite file.
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
        Ok(Location::Sqlite(PathBuf::from(text)))
    }
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

/// Copies `text` to `out` with the value of every `password=` parameter (any case, in a
/// query string or a `key=value` list) replaced by `***`.
fn redact_parameters(text: &str, out: &mut String) {
    const KEY: &str = "password=";
    let lower = text.to_ascii_lowercase();
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(KEY) {
        let start = from + found;
        let at_boundary = start == 0
            || matches!(
                lower.as_bytes()[start - 1],
                b'?' | b'&' | b' ' | b'\t' | b'\n' | b';'
            );
        let value_start = start + KEY.len();
        if !at_boundary {
            from = value_start;
            continue;
        }
        let value_end = text[value_start..]
            .find(['&', ' ', '\t', '\n', ';', '#'])
            .map_or(text.len(), |i| value_start + i);
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
