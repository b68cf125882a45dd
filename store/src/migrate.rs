//! Versioned schema migrations: numbered SQL files compiled into the crate.
//!
//! Each backend keeps a table `runcomfy_schema` with one row per applied version. At open,
//! the versions this build knows and the database does not have are applied in order, in one
//! transaction under the backend's write lock, so workers starting together migrate once. A
//! database with a version newer than this build knows is refused: an older worker must not
//! write to a layout it does not understand.

use crate::error::StoreError;

/// One numbered migration.
#[derive(Debug)]
pub(crate) struct Migration {
    /// Its version (the file's number).
    pub version: i64,
    /// The SQL, run as one batch.
    pub sql: &'static str,
}

/// The migrations of the SQLite backend.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/sqlite/0002_outputs_dir.sql"),
    },
];

/// The migrations of the PostgreSQL backend.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/postgres/0002_outputs_dir.sql"),
    },
];

/// The migrations to apply to a database at version `current` (0: empty), or the refusal of
/// a database newer than `known`.
pub(crate) fn pending<'a>(
    current: i64,
    known: &'a [Migration],
    location: &str,
) -> Result<&'a [Migration], StoreError> {
    let newest = known.last().map_or(0, |m| m.version);
    if current > newest {
        return Err(StoreError::SchemaTooNew {
            location: location.to_owned(),
            found: current,
            known: newest,
        });
    }
    let first = known.partition_point(|m| m.version <= current);
    Ok(&known[first..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Migration] = &[
        Migration {
            version: 1,
            sql: "a",
        },
        Migration {
            version: 2,
            sql: "b",
        },
    ];

    #[test]
    fn applies_what_is_missing_and_refuses_what_is_newer() {
        assert_eq!(pending(0, KNOWN, "x").unwrap().len(), 2);
        assert_eq!(pending(1, KNOWN, "x").unwrap()[0].sql, "b");
        assert!(pending(2, KNOWN, "x").unwrap().is_empty());
        let err = pending(3, KNOWN, "x").unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SchemaTooNew {
                    found: 3,
                    known: 2,
                    ..
                }
            ),
            "{err}"
        );
    }
}
