//! Recognising, creating and migrating a state file.
//!
//! A linkbox state file is a SQLite database whose header carries linkbox's
//! `application_id` and whose `meta` table names the app and the schema version. Anything
//! else — not SQLite, another program's database, a damaged file, a newer schema — is refused
//! before a single byte of it is written. A new (or empty) file starts at version 0 (just
//! `meta`) and is brought to [`LATEST`] by the same [`MIGRATIONS`] an older file goes
//! through, each step in its own transaction with the version it reaches.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Transaction};

/// `LNKB`, in the SQLite header (offset 68): tells linkbox's files from any other program's.
pub const APPLICATION_ID: u32 = 0x4C4E_4B42;
/// The `meta.app` of every linkbox state file.
pub const APP: &str = "linkbox";
/// The schema version this build writes.
pub const LATEST: u32 = 6;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// One forward step: run `sql` on a file at version `to - 1` to reach version `to`.
pub struct Migration {
    pub to: u32,
    pub sql: &'static str,
}

/// Migration 3's SQL for each entity table named: rebuilt keyed by `(tenant, position, id)`,
/// its rows copied over in that order.
macro_rules! rekeyed {
    ($($table:literal),+) => {
        concat!($(
            "CREATE TABLE ", $table, "_v3 (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, position, id)) WITHOUT ROWID;\n",
            "INSERT INTO ", $table, "_v3 (tenant, id, position, doc) SELECT tenant, id, position, doc FROM ", $table, " ORDER BY tenant, position, id;\n",
            "DROP TABLE ", $table, ";\n",
            "ALTER TABLE ", $table, "_v3 RENAME TO ", $table, ";\n",
        )+)
    };
}

/// Every step from version 0, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 1,
    sql: "
        CREATE TABLE m2m_partners (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE TABLE m2m_users (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE TABLE m2m_links (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE TABLE m2m_data_requests (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE TABLE m2m_operations (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE TABLE leaf_users (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE TABLE leaf_magic_links (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE TABLE webhook_deliveries (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE TABLE clock (id INTEGER PRIMARY KEY CHECK (id = 1), offset_ms INTEGER NOT NULL, frozen_at TEXT);
        CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    ",
    },
    Migration {
        to: 2,
        sql: "
        CREATE TABLE quarantine (source TEXT NOT NULL, tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (source, tenant, id)) WITHOUT ROWID;
    ",
    },
    // Entity rows keyed by `(tenant, position, id)`, so that new rows (each kind's next
    // position) append to their table instead of landing on a random page, as random ids
    // did: a group commit writes a few pages per table, not one per row.
    // Copied in the new key's order, so the copy appends too: 12 s instead of 27 s for a
    // table of a million links.
    Migration {
        to: 3,
        sql: rekeyed!(
            "m2m_partners",
            "m2m_users",
            "m2m_links",
            "m2m_data_requests",
            "m2m_operations",
            "leaf_users",
            "leaf_magic_links",
            "webhook_deliveries"
        ),
    },
    // Deliveries keyed by `(position, tenant, id)`: a delivery's position is its place in
    // the one queue all partners share, so every partner's new deliveries append to one
    // leaf and the trim deletes from one, where keyed by partner first each commit rewrote
    // a last leaf and a first leaf per partner (docs/benchmarks.md).
    Migration {
        to: 4,
        sql: "
        CREATE TABLE webhook_deliveries_v4 (tenant TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (position, tenant, id)) WITHOUT ROWID;
        INSERT INTO webhook_deliveries_v4 (tenant, id, position, doc) SELECT tenant, id, position, doc FROM webhook_deliveries ORDER BY position, tenant, id;
        DROP TABLE webhook_deliveries;
        ALTER TABLE webhook_deliveries_v4 RENAME TO webhook_deliveries;
    ",
    },
    // The write log: each group commit's changes as one row, applied to their tables many
    // commits at a time, so that a commit writes about as many pages as its changes fill
    // (`persist::write_log`, docs/benchmarks.md).
    Migration {
        to: 5,
        sql: "
        CREATE TABLE write_log (seq INTEGER PRIMARY KEY, batch BLOB NOT NULL);
    ",
    },
    // The write log moves to a file beside the state file (`FILE-log`), applied by a thread
    // of its own while commits go on (`persist::write_log`, docs/benchmarks.md).
    // `log_applied` names the file's log (a random number every frame carries) and the last
    // frame its tables hold. `write_log` stays, read once when a file of version 5 that
    // still has rows in it is opened, and empty from then on.
    Migration {
        to: 6,
        sql: "
        CREATE TABLE log_applied (id INTEGER PRIMARY KEY CHECK (id = 1), log INTEGER NOT NULL, seq INTEGER NOT NULL);
        INSERT INTO log_applied (id, log, seq) VALUES (1, random(), 0);
    ",
    },
];

/// Why a state file cannot be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use state file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(
        "state file {0} is not a SQLite database, so not a linkbox state file; refusing to touch it"
    )]
    NotSqlite(PathBuf),
    #[error("state file {0} is a SQLite database of another program ({1}); refusing to touch it")]
    Foreign(PathBuf, String),
    #[error(
        "state file {path} has schema version {found}, newer than the {LATEST} this linkbox reads; use a newer linkbox"
    )]
    TooNew { path: PathBuf, found: u32 },
    #[error("state file {0} is damaged or unreadable: {1}")]
    Corrupt(PathBuf, String),
    /// A sound file that cannot be used where it is: read-only, a full disk, no permission.
    /// Not "damaged", which would invite deleting it.
    #[error("cannot use state file {0}: {1} (the file itself is not damaged)")]
    Unusable(PathBuf, String),
    /// Its write log cannot be applied as it is (damage that sound frames follow, or another
    /// file's log beside it): nothing was modified.
    #[error("cannot open state file {0}: {1}")]
    Log(PathBuf, String),
    /// A path that names something other than a file (a directory, a FIFO, a device),
    /// refused before it is opened.
    #[error("state file {0} is {1}; give --state the path of a file")]
    NotAFile(PathBuf, &'static str),
    /// A file of more than one name (hard links): the write log is kept beside the name it
    /// is opened by, so each name would keep one of its own.
    #[error(
        "state file {0} has {1} names (hard links), and its write log is kept beside the name it is opened by, so two names would keep two logs and lose changes; remove the other links, or give --state a copy"
    )]
    HardLinked(PathBuf, u64),
    /// A new file that cannot be made where it is asked for (no such directory, or one
    /// linkbox may not write in): nothing is wrong with any file.
    #[error("cannot create state file {0}: {1}")]
    Create(PathBuf, String),
    #[error("cannot reach the PostgreSQL database at {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error(
        "the PostgreSQL database at {target} has linkbox schema version {found}, newer than the {latest} this linkbox knows; use a newer linkbox"
    )]
    DatabaseTooNew {
        target: String,
        found: i32,
        latest: i32,
    },
    #[error("cannot use the PostgreSQL database at {target}: {reason}")]
    Database { target: String, reason: String },
    #[error(
        "state file {path} is in use by another linkbox ({holder}); two servers on one file would overwrite each other. Stop it, or give this one another --state file"
    )]
    Locked { path: PathBuf, holder: String },
}

/// Why a file linkbox may not write is refused.
const READ_ONLY: &str =
    "it is read-only to linkbox (the file or its directory: linkbox writes both)";

impl OpenError {
    pub fn corrupt(path: &Path, error: impl std::fmt::Display) -> OpenError {
        OpenError::Corrupt(path.to_owned(), error.to_string())
    }

    /// The refusal for SQLite's `error`: a file that cannot be written or read where it is
    /// (read-only, a full disk, no permission, busy) is [`OpenError::Unusable`], anything
    /// else [`OpenError::Corrupt`].
    pub fn sql(path: &Path, error: &rusqlite::Error) -> OpenError {
        use rusqlite::ErrorCode;
        let why = match error.sqlite_error_code() {
            Some(ErrorCode::ReadOnly) => READ_ONLY,
            Some(ErrorCode::DiskFull) => "the disk it is on is full",
            Some(ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
                "linkbox may not open it (permissions of the file or its directory)"
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                "another program holds it locked"
            }
            _ => return OpenError::corrupt(path, error),
        };
        OpenError::Unusable(path.to_owned(), format!("{why}: {error}"))
    }

    /// The refusal for a write log that could not be applied.
    pub(super) fn log(path: &Path, error: super::write_log::LogError) -> OpenError {
        use super::write_log::LogError;
        match error {
            LogError::Sql(error) => OpenError::sql(path, &error),
            LogError::Io { ref error, .. } if error.kind() == std::io::ErrorKind::StorageFull => {
                OpenError::Unusable(path.to_owned(), error.to_string())
            }
            error @ (LogError::Damaged { .. } | LogError::Foreign { .. }) => {
                OpenError::Log(path.to_owned(), error.to_string())
            }
            error => OpenError::corrupt(path, error),
        }
    }
}

/// Opens `path` as a linkbox state file at [`LATEST`], creating it if it does not exist or
/// is empty. A file that is not one is refused before anything is written to it.
pub fn open(path: &Path) -> Result<Connection, OpenError> {
    let fresh = match std::fs::metadata(path) {
        Ok(metadata) => metadata.len() == 0,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
        Err(error) => return Err(OpenError::Io(path.to_owned(), error)),
    };
    if !fresh {
        check_header(path)?;
    }
    if fresh {
        directory_exists(path)?;
    }
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| {
        if fresh {
            OpenError::Create(
                path.to_owned(),
                format!("{error} (can linkbox write in its directory?)"),
            )
        } else {
            OpenError::sql(path, &error)
        }
    })?;
    // SQLite opens a file it may not write read-only, without a word; served so, every
    // change would be answered and saved nowhere, and every apply fail. Refused before
    // anything is read (reading a file of write-ahead logging makes its `-shm`).
    let read_only = connection
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|error| OpenError::sql(path, &error))?;
    if read_only {
        return Err(OpenError::Unusable(
            path.to_owned(),
            format!("{READ_ONLY}: SQLite could open it for reading only"),
        ));
    }
    let mut connection = connection;
    // A database with nothing in it at all is one whose making was cut short (killed while
    // its tables were being created: SQLite rolls that back to nothing on this first read)
    // or that holds nothing to lose: made a state file, not refused as another program's.
    let empty = !fresh
        && connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(|error| OpenError::sql(path, &error))?
            == 0;
    if empty {
        tracing::info!(path = %path.display(), "state file: an empty database (its making cut short?); made a state file of it");
    }
    if fresh || empty {
        initialize(&mut connection).map_err(|error| OpenError::sql(path, &error))?;
    }
    let version = version(&connection, path)?;
    if version > LATEST {
        return Err(OpenError::TooNew {
            path: path.to_owned(),
            found: version,
        });
    }
    migrate(&mut connection, version, MIGRATIONS).map_err(|error| OpenError::sql(path, &error))?;
    Ok(connection)
}

/// Makes an empty file at `path` if there is none, which [`open`] makes a state file: so
/// that it can be locked before anything is written to it (`super::open`). A file that is
/// there is left as it is.
pub fn make_empty(path: &Path) -> Result<(), OpenError> {
    match std::fs::metadata(path) {
        Ok(_) => return Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(OpenError::Io(path.to_owned(), error)),
    }
    // A link to a file not made yet makes its target, in the target's directory.
    match std::fs::read_link(path) {
        Ok(target) => {
            let target = path.parent().unwrap_or(Path::new(".")).join(target);
            directory_exists(&target).map_err(|error| match error {
                OpenError::Create(_, why) => OpenError::Create(
                    path.to_owned(),
                    format!("it is a link to {}, and {why}", target.display()),
                ),
                other => other,
            })?;
        }
        Err(_) => directory_exists(path)?,
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(|error| {
            OpenError::Create(
                path.to_owned(),
                format!("{error} (can linkbox write in its directory?)"),
            )
        })
}

/// Refuses a new file in a directory that does not exist.
fn directory_exists(path: &Path) -> Result<(), OpenError> {
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if directory.is_dir() {
        return Ok(());
    }
    Err(OpenError::Create(
        path.to_owned(),
        format!(
            "its directory {} does not exist; create it, or give --state a file in a directory that does",
            directory.display()
        ),
    ))
}

/// Write-ahead logging, so readers of the file (the `sqlite3` shell) never block the
/// applier. `synchronous = FULL`: the tables are written only by the applier
/// ([`super::writer`]), a few transactions a second under load and none of them waited on by
/// a request, and it removes the write log it applied only once its transaction is on the
/// disk. A request waits on the write log ([`super::write_log`]), a `write` into the
/// operating system's hands, so killing linkbox at any moment (`kill -9`, a crash) loses
/// nothing acknowledged; only a power cut or kernel crash could lose the last commits (what
/// `synchronous = NORMAL` risks too), which a sandbox can afford.
pub fn start_writing(connection: &mut Connection) -> rusqlite::Result<()> {
    connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// Refuses a file whose first page is not SQLite's, or is another program's.
fn check_header(path: &Path) -> Result<(), OpenError> {
    let mut header = [0u8; 100];
    let mut file =
        std::fs::File::open(path).map_err(|error| OpenError::Io(path.to_owned(), error))?;
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(error) => return Err(OpenError::Io(path.to_owned(), error)),
        }
    }
    if read < header.len() || &header[..16] != SQLITE_MAGIC {
        return Err(OpenError::NotSqlite(path.to_owned()));
    }
    let application_id = u32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    if application_id != APPLICATION_ID {
        return Err(OpenError::Foreign(
            path.to_owned(),
            format!("application_id {application_id:#010x}, not linkbox's {APPLICATION_ID:#010x}"),
        ));
    }
    Ok(())
}

/// The page size of a file linkbox creates. SQLite's default is 4 KiB; each commit writes
/// every page it touched whole, to the write-ahead log and then again to the file, and a
/// commit of a few dozen creates touches a few dozen pages whatever their size, so fewer,
/// larger pages mean fewer writes and b-tree splits per create: with 8 KiB, `--state`
/// creates ran at 0.88–1.24 of 4 KiB's rate in eleven alternated rounds (median 1.09), for
/// about a quarter more bytes written (docs/benchmarks.md). A file keeps the page size it
/// was created with.
pub const PAGE_SIZE: i64 = 8192;

/// Version 0: linkbox's application id and `meta`, nothing else, in pages of
/// [`PAGE_SIZE`].
fn initialize(connection: &mut Connection) -> rusqlite::Result<()> {
    // Takes effect only on a file with no page yet, which is the only kind initialized.
    connection.pragma_update(None, "page_size", PAGE_SIZE)?;
    let transaction = connection.transaction()?;
    transaction.pragma_update(None, "application_id", APPLICATION_ID)?;
    transaction
        .execute_batch("CREATE TABLE meta (app TEXT NOT NULL, schema_version INTEGER NOT NULL);")?;
    transaction.execute(
        "INSERT INTO meta (app, schema_version) VALUES (?1, 0)",
        [APP],
    )?;
    transaction.commit()
}

/// The schema version `meta` records, after checking it is linkbox's.
fn version(connection: &Connection, path: &Path) -> Result<u32, OpenError> {
    let row = connection.query_row("SELECT app, schema_version FROM meta", [], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    });
    match row {
        Ok((app, version)) if app == APP => u32::try_from(version)
            .map_err(|_| OpenError::corrupt(path, format!("schema version {version}"))),
        Ok((app, _)) => Err(OpenError::Foreign(
            path.to_owned(),
            format!("meta.app is {app:?}"),
        )),
        Err(rusqlite::Error::SqliteFailure(error, Some(message)))
            if error.code == rusqlite::ErrorCode::Unknown && message.contains("no such table") =>
        {
            Err(OpenError::Foreign(
                path.to_owned(),
                "it has no meta table".into(),
            ))
        }
        Err(error) => Err(OpenError::sql(path, &error)),
    }
}

/// Applies every step of `migrations` beyond `from`, in order, each in its own transaction
/// that also records the version reached. Returns the version reached.
pub fn migrate(
    connection: &mut Connection,
    from: u32,
    migrations: &[Migration],
) -> rusqlite::Result<u32> {
    let mut version = from;
    for migration in migrations.iter().filter(|migration| migration.to > from) {
        let transaction = connection.transaction()?;
        step(&transaction, migration)?;
        transaction.commit()?;
        tracing::info!(version = migration.to, "state file migrated");
        version = migration.to;
    }
    Ok(version)
}

fn step(transaction: &Transaction<'_>, migration: &Migration) -> rusqlite::Result<()> {
    transaction.execute_batch(migration.sql)?;
    transaction.execute("UPDATE meta SET schema_version = ?1", [migration.to])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_at_version_zero() -> Connection {
        let mut connection = Connection::open_in_memory().expect("in-memory database");
        initialize(&mut connection).expect("initialized");
        connection
    }

    fn schema_version(connection: &Connection) -> u32 {
        connection
            .query_row("SELECT schema_version FROM meta", [], |row| row.get(0))
            .expect("meta")
    }

    #[test]
    fn the_migrations_count_up_from_one_without_gaps() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.to as usize, index + 1);
        }
        assert_eq!(
            MIGRATIONS.last().map(|migration| migration.to),
            Some(LATEST)
        );
    }

    fn page_size(connection: &Connection) -> i64 {
        connection
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .expect("page_size")
    }

    #[test]
    fn a_new_file_has_pages_of_page_size_and_an_older_file_keeps_its_own() {
        let dir = tempfile::Builder::new()
            .prefix("linkbox-schema-pages-")
            .tempdir()
            .expect("temporary directory");
        let new = dir.path().join("new.db");
        let mut connection = open(&new).expect("created");
        start_writing(&mut connection).expect("writing");
        assert_eq!(page_size(&connection), PAGE_SIZE);
        drop(connection);
        assert_eq!(page_size(&open(&new).expect("reopened")), PAGE_SIZE);

        // A file made by a linkbox that left SQLite's 4 KiB default: its first page is
        // written at 4 KiB before `initialize`, which then cannot change the size.
        let old = dir.path().join("old.db");
        {
            let mut connection = Connection::open(&old).expect("created");
            connection
                .pragma_update(None, "page_size", 4096)
                .expect("page size");
            connection
                .pragma_update(None, "application_id", APPLICATION_ID)
                .expect("first page written");
            initialize(&mut connection).expect("version 0");
        }
        let mut connection = open(&old).expect("opened and migrated");
        start_writing(&mut connection).expect("writing");
        assert_eq!(schema_version(&connection), LATEST);
        assert_eq!(page_size(&connection), 4096);
    }

    #[test]
    fn a_version_zero_file_is_migrated_to_the_latest_layout() {
        let mut connection = memory_at_version_zero();
        assert_eq!(schema_version(&connection), 0);
        assert_eq!(
            migrate(&mut connection, 0, MIGRATIONS).expect("migrated"),
            LATEST
        );
        assert_eq!(schema_version(&connection), LATEST);
        for table in crate::persist::Table::ALL {
            connection
                .execute(
                    &format!(
                        "INSERT INTO {} (tenant, id, position, doc) VALUES ('t', 'i', 0, '{{}}')",
                        table.name()
                    ),
                    [],
                )
                .expect("the table exists with the shared layout");
        }
    }

    #[test]
    fn version_three_keys_rows_by_position_and_keeps_a_version_two_files_rows() {
        let mut connection = memory_at_version_zero();
        migrate(&mut connection, 0, &MIGRATIONS[..2]).expect("at version 2");
        for table in crate::persist::Table::ALL {
            for (id, position) in [("b", 1), ("a", 0)] {
                connection
                    .execute(
                        &format!(
                            "INSERT INTO {} (tenant, id, position, doc) VALUES ('t', ?1, ?2, ?3)",
                            table.name()
                        ),
                        rusqlite::params![id, position, format!("{{\"n\":{position}}}")],
                    )
                    .expect("a version 2 row");
            }
        }
        assert_eq!(
            migrate(&mut connection, 2, &MIGRATIONS[..3]).expect("migrated"),
            3
        );
        for table in crate::persist::Table::ALL {
            let name = table.name();
            let rows: Vec<(String, i64, String)> = connection
                .prepare(&format!("SELECT id, position, doc FROM {name}"))
                .and_then(|mut statement| {
                    statement
                        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                        .collect()
                })
                .expect("rows");
            assert_eq!(
                rows,
                [
                    ("a".to_owned(), 0, "{\"n\":0}".to_owned()),
                    ("b".to_owned(), 1, "{\"n\":1}".to_owned())
                ],
                "{name}: every row kept, read in position order"
            );
            let insert = |position: i64| {
                connection.execute(
                    &format!(
                        "INSERT INTO {name} (tenant, id, position, doc) VALUES ('t', 'a', ?1, '{{}}')"
                    ),
                    [position],
                )
            };
            assert!(
                insert(0).is_err(),
                "{name}: (tenant, position, id) is the key"
            );
            assert!(insert(7).is_ok(), "{name}: the id alone is not");
        }
    }

    /// The pages of `table`'s b-tree, as SQLite's `dbstat` counts them.
    fn pages(connection: &Connection, table: &str) -> i64 {
        connection
            .query_row(
                "SELECT count(*) FROM dbstat WHERE name = ?1",
                [table],
                |row| row.get(0),
            )
            .expect("dbstat")
    }

    #[test]
    fn version_four_keys_deliveries_by_their_place_in_the_queue_and_keeps_every_row() {
        let mut connection = memory_at_version_zero();
        migrate(&mut connection, 0, &MIGRATIONS[..3]).expect("at version 3");
        let deliveries = crate::persist::Table::WebhookDeliveries.name();
        // The queue's order runs across partners: 3 (b), 1 (a), 2 (b) in, 1 2 3 out.
        for (tenant, position) in [("b", 3), ("a", 1), ("b", 2)] {
            connection
                .execute(
                    &format!("INSERT INTO {deliveries} (tenant, id, position, doc) VALUES (?1, ?2, ?3, '{{}}')"),
                    rusqlite::params![tenant, format!("whd_{position}"), position],
                )
                .expect("a version 3 row");
        }
        assert_eq!(
            migrate(&mut connection, 3, &MIGRATIONS[..4]).expect("migrated"),
            4
        );
        let rows: Vec<(String, i64)> = connection
            .prepare(&format!("SELECT tenant, position FROM {deliveries}"))
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .expect("rows");
        assert_eq!(
            rows,
            [
                ("a".to_owned(), 1),
                ("b".to_owned(), 2),
                ("b".to_owned(), 3)
            ],
            "every row kept, read in the queue's order with no sort"
        );
        let plan: String = connection
            .query_row(
                &format!("EXPLAIN QUERY PLAN DELETE FROM {deliveries} WHERE tenant = 'a' AND position = 1 AND id = 'whd_1'"),
                [],
                |row| row.get(3),
            )
            .expect("plan");
        assert!(
            plan.contains("PRIMARY KEY"),
            "a trim finds its row by key: {plan}"
        );
    }

    #[test]
    fn deliveries_of_many_partners_fill_pages_as_one_partners_do() {
        // What the layout is for: a commit's new deliveries, whoever's they are, land on
        // the same last page; keyed by partner first, each partner's went to a page of its
        // own, half empty ever after.
        let fill = |partners: usize| {
            let mut connection = memory_at_version_zero();
            migrate(&mut connection, 0, MIGRATIONS).expect("latest");
            let deliveries = crate::persist::Table::WebhookDeliveries.name();
            let doc = "x".repeat(600);
            for position in 0..2_000_i64 {
                let tenant = format!("partner-{}", position as usize % partners);
                connection
                    .execute(
                        &format!("INSERT INTO {deliveries} (tenant, id, position, doc) VALUES (?1, ?2, ?3, ?4)"),
                        rusqlite::params![tenant, format!("whd_{position:012x}"), position, doc],
                    )
                    .expect("row");
            }
            pages(&connection, deliveries)
        };
        let one = fill(1);
        let many = fill(64);
        assert!(
            many <= one + one / 20,
            "2,000 deliveries of 64 partners took {many} pages, of one partner {one}"
        );
    }

    #[test]
    fn only_pending_steps_run_and_in_order() {
        let steps = [
            Migration {
                to: 1,
                sql: "CREATE TABLE log (step INTEGER);",
            },
            Migration {
                to: 2,
                sql: "INSERT INTO log VALUES (2);",
            },
            Migration {
                to: 3,
                sql: "INSERT INTO log VALUES (3);",
            },
        ];
        let mut connection = memory_at_version_zero();
        assert_eq!(migrate(&mut connection, 0, &steps[..2]).expect("to 2"), 2);
        assert_eq!(migrate(&mut connection, 2, &steps).expect("to 3"), 3);
        let log: Vec<i64> = connection
            .prepare("SELECT step FROM log ORDER BY rowid")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(log, [2, 3]);
        assert_eq!(schema_version(&connection), 3);
    }

    #[test]
    fn a_failing_step_leaves_the_previous_version_in_place() {
        let steps = [
            Migration {
                to: 1,
                sql: "CREATE TABLE a (x);",
            },
            Migration {
                to: 2,
                sql: "THIS IS NOT SQL;",
            },
        ];
        let mut connection = memory_at_version_zero();
        assert!(migrate(&mut connection, 0, &steps).is_err());
        assert_eq!(schema_version(&connection), 1);
    }

    #[test]
    fn a_file_that_cannot_be_written_is_unusable_not_damaged() {
        let path = Path::new("state.db");
        let failure = |code, message: &str| {
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(message.into()))
        };
        let read_only = OpenError::sql(
            path,
            &failure(
                rusqlite::ffi::SQLITE_READONLY,
                "attempt to write a readonly database",
            ),
        )
        .to_string();
        assert!(read_only.contains("read-only"), "{read_only}");
        assert!(read_only.contains("not damaged"), "{read_only}");
        let full = OpenError::sql(
            path,
            &failure(rusqlite::ffi::SQLITE_FULL, "database or disk is full"),
        )
        .to_string();
        assert!(full.contains("disk it is on is full"), "{full}");
        assert!(!full.contains("is damaged"), "{full}");
        let corrupt = OpenError::sql(
            path,
            &failure(
                rusqlite::ffi::SQLITE_CORRUPT,
                "database disk image is malformed",
            ),
        );
        assert!(matches!(corrupt, OpenError::Corrupt(..)), "{corrupt}");
    }
}
