//! The crash journal: what a bridge process declared on RabbitMQ, so that the
//! next bridge deletes what a killed one left behind.
//!
//! A session deletes its namespace (`pg.<hex>.*`) when it ends, and a bridge
//! shut down with Ctrl-C/SIGTERM ends its sessions first. A bridge that is
//! SIGKILLed (or crashes, or loses its machine) cleans up nothing, and AMQP
//! has no connection-scoped exchanges, nor a way to list queues. So each
//! bridge process appends every queue and exchange it declares to its own
//! journal file, `<state dir>/<broker>/<pid>-<random>.journal`, and holds an
//! exclusive `flock` on it for as long as it runs; the kernel releases that
//! lock when the process dies, however it dies.
//!
//! At startup a bridge [`sweep`]s the journals of the same broker: a journal
//! it can lock belongs to a dead process, so the objects it lists are deleted
//! (a missing one is fine) and the journal is removed. A journal whose lock
//! is held belongs to a live bridge (or a live `cargo xtask` run) and is never
//! touched, so bridges and test processes sharing one broker and one state
//! directory never delete each other's namespaces. Sessions that ended
//! cleanly are marked `end` in the journal and skipped.
//!
//! Format, one record per line: `q <queue>`, `x <exchange>`, `end <prefix>`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{flock, FlockOperation};

/// Errors opening a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot create the journal directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the journal {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The journal of this process (shared by its sessions).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// Open (and locked) for the life of the process.
    file: Mutex<File>,
}

/// The folder of one broker's journals: the AMQP URL is hashed (it may hold
/// credentials), so one state directory can serve several brokers.
pub fn broker_dir(state_dir: &Path, amqp_url: &str) -> PathBuf {
    // FNV-1a: stable across Rust versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in amqp_url.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    state_dir.join(format!("broker-{h:016x}"))
}

impl Journal {
    /// Creates this process's journal in `dir` and locks it.
    pub fn create(dir: &Path) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = format!("{}-{:016x}", std::process::id(), super::names::random_u64());
        // Locked under a name sweepers ignore, then renamed: a sweeper never
        // sees an unlocked journal of a live process.
        let tmp = dir.join(format!("{name}.new"));
        let path = dir.join(format!("{name}.journal"));
        let err = |source| JournalError::File {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&tmp)
            .map_err(err)?;
        flock(&file, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| err(std::io::Error::from(e)))?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, kind: &str, name: &str) {
        // A name with a line break cannot be a queue or exchange name the
        // relay declared (RabbitMQ refuses none, but the format would break).
        if name.contains('\n') {
            return;
        }
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(format!("{kind} {name}\n").as_bytes());
        }
    }

    /// Records a queue about to be declared.
    pub fn queue(&self, name: &str) {
        self.append("q", name);
    }

    /// Records an exchange about to be declared.
    pub fn exchange(&self, name: &str) {
        self.append("x", name);
    }

    /// Records that a session deleted everything under `prefix`.
    pub fn end(&self, prefix: &str) {
        self.append("end", prefix);
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Dropped at a clean exit, after the sessions' cleanup.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a dead process left, read from its journal.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub queues: Vec<String>,
    pub exchanges: Vec<String>,
}

/// Parses a journal: the objects of sessions that did not end cleanly.
pub fn parse(text: &str) -> Leftovers {
    let mut ended: Vec<&str> = Vec::new();
    let mut queues: Vec<&str> = Vec::new();
    let mut exchanges: Vec<&str> = Vec::new();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("q", name)) => queues.push(name),
            Some(("x", name)) => exchanges.push(name),
            Some(("end", prefix)) => ended.push(prefix),
            _ => {}
        }
    }
    let live = |name: &&str| !ended.iter().any(|p| name.starts_with(p));
    let mut out = Leftovers::default();
    for q in queues.into_iter().filter(live) {
        if !out.queues.iter().any(|x| x == q) {
            out.queues.push(q.to_string());
        }
    }
    for x in exchanges.into_iter().filter(live) {
        if !out.exchanges.iter().any(|e| e == x) {
            out.exchanges.push(x.to_string());
        }
    }
    out
}

/// A dead process's journal, locked by us until dropped.
#[derive(Debug)]
pub struct Orphan {
    pub path: PathBuf,
    pub leftovers: Leftovers,
    _lock: File,
}

impl Orphan {
    /// Removes the journal (its objects are deleted).
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The journals in `dir` whose process is gone (their lock is free), locked
/// for the caller. Live processes' journals are skipped.
pub fn orphans(dir: &Path) -> Vec<Orphan> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("journal") {
            continue;
        }
        let Ok(file) = OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // its process is alive
        }
        // The file may have been swept and removed meanwhile.
        if !path.exists() {
            continue;
        }
        let mut text = String::new();
        for line in BufReader::new(&file).lines() {
            let Ok(line) = line else { break };
            text.push_str(&line);
            text.push('\n');
        }
        out.push(Orphan {
            path,
            leftovers: parse(&text),
            _lock: file,
        });
    }
    out
}

/// What a sweep deleted.
#[derive(Debug, Default)]
pub struct Swept {
    pub journals: usize,
    pub queues: usize,
    pub exchanges: usize,
}

/// Deletes what dead bridge processes left on the broker (see the module
/// docs). Connects only if there is something to delete; `Err` when the
/// broker cannot be reached (the journals stay for a later sweep).
pub async fn sweep(
    dir: &Path,
    amqp_url: &str,
    timeout: std::time::Duration,
) -> Result<Swept, String> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    use lapin::{Connection, ConnectionProperties};

    let found = orphans(dir);
    let mut swept = Swept::default();
    if found.is_empty() {
        return Ok(swept);
    }
    let props = ConnectionProperties::default()
        .with_connection_name("amqp-playground sweep".to_string().into());
    let conn = tokio::time::timeout(timeout, Connection::connect(amqp_url, props))
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
        .map_err(|e| e.to_string().replace(amqp_url, "<amqp-url>"))?;
    let mut ch = conn.create_channel().await.map_err(|e| e.to_string())?;
    for orphan in found {
        let Leftovers { queues, exchanges } = &orphan.leftovers;
        for q in queues {
            let Ok(name) = super::convert::short("queue", q) else {
                continue;
            };
            match ch.queue_delete(name, QueueDeleteOptions::default()).await {
                Ok(_) => swept.queues += 1,
                // Deleted already (404 closes the channel): open another.
                Err(_) => ch = conn.create_channel().await.map_err(|e| e.to_string())?,
            }
        }
        for x in exchanges {
            let Ok(name) = super::convert::short("exchange", x) else {
                continue;
            };
            match ch
                .exchange_delete(name, ExchangeDeleteOptions::default())
                .await
            {
                Ok(()) => swept.exchanges += 1,
                Err(_) => ch = conn.create_channel().await.map_err(|e| e.to_string())?,
            }
        }
        swept.journals += 1;
        orphan.remove();
    }
    let _ = conn.close(200, "OK".into()).await;
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pg-journal-{tag}-{}-{:x}",
            std::process::id(),
            super::super::names::random_u64()
        ));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn ended_sessions_are_not_leftovers() {
        let text = "x pg.1.\nq pg.1.a\nx pg.2.\nq pg.2.b\nq pg.2.b\nend pg.1.\nbogus\n";
        assert_eq!(
            parse(text),
            Leftovers {
                queues: vec!["pg.2.b".into()],
                exchanges: vec!["pg.2.".into()],
            }
        );
    }

    #[test]
    fn a_live_journal_is_never_an_orphan() {
        let dir = temp_dir("live");
        let live = Journal::create(&dir).expect("journal");
        live.queue("pg.live.q");
        assert!(
            orphans(&dir).is_empty(),
            "a locked journal must not be swept"
        );
        let path = live.path().to_path_buf();
        assert!(path.exists());
        drop(live);
        assert!(!path.exists(), "a clean exit removes the journal");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_journal_without_its_lock_is_an_orphan() {
        let dir = temp_dir("dead");
        // What a killed process leaves: a journal nobody holds a lock on.
        std::fs::write(dir.join("1-0.journal"), "q pg.dead.q\nx pg.dead.\n").expect("write");
        let found = orphans(&dir);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].leftovers.queues, ["pg.dead.q"]);
        // While one sweeper holds it, another does not get it.
        assert!(orphans(&dir).is_empty());
        for o in found {
            o.remove();
        }
        assert!(orphans(&dir).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn urls_get_their_own_folders() {
        let a = broker_dir(Path::new("/s"), "amqp://a/%2f");
        let b = broker_dir(Path::new("/s"), "amqp://b/%2f");
        assert_ne!(a, b);
        assert_eq!(a, broker_dir(Path::new("/s"), "amqp://a/%2f"));
        assert!(!a.to_string_lossy().contains("amqp"));
    }
}
