//! The journal of a sync (`--journal FILE`): one JSON line per image as it finishes —
//!
//! ```json
//! {"source":"docker://quay.io/team/app:v1","destination":"docker://r.example.com/mirror/app:v1","digest":"sha256:…","outcome":"copied","bytes":52311,"time":"2025-06-01T09:30:12Z"}
//! ```
//!
//! — appended as soon as the image is done, so that a run that is killed (a pod restarted by
//! its Job's `backoffLimit`) leaves behind what it finished. A run given the same journal
//! skips an image the journal records as done (`copied`, `present` or `journaled`) from the
//! same source to the same destination, once the destination confirms it holds that digest
//! under the reference (one `HEAD`); otherwise the image is copied as usual. A last line cut
//! short by the kill is ignored; so is any line that is not an entry, with a warning.
//!
//! A journal belongs to one run of one list: the source is not asked again for what the
//! journal records, so a tag that moved at the source since then is not noticed. Start a new
//! run (a new list, the next night) with a new journal file.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::outcome::Outcome;
use crate::error::{Error, Result};

/// One line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `docker://registry/repository:tag`.
    pub source: String,
    /// `docker://…` at the destination.
    pub destination: String,
    /// The manifest digest at the destination (empty when it failed before knowing it).
    pub digest: String,
    /// What happened.
    pub outcome: Outcome,
    /// Bytes moved for it.
    pub bytes: u64,
    /// When, UTC, RFC 3339.
    pub time: String,
}

/// An open journal: what earlier runs finished, and the file to append to.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    /// (source, destination) → digest, for entries that are done.
    done: HashMap<(String, String), String>,
}

impl Journal {
    /// Read `path` (if it exists) and open it for appending.
    pub fn open(path: &Path) -> Result<Journal> {
        let mut done = HashMap::new();
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let complete = text.ends_with('\n');
                let lines: Vec<&str> = text.lines().collect();
                for (i, line) in lines.iter().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Entry>(line) {
                        Ok(e) if e.outcome.done() && !e.digest.is_empty() => {
                            done.insert((e.source, e.destination), e.digest);
                        }
                        Ok(e) => {
                            // A later failure does not undo an earlier success of the same
                            // image: its bytes are still there, and the HEAD will tell.
                            let _ = e;
                        }
                        // The last line of a killed run may be cut short.
                        Err(_) if i + 1 == lines.len() && !complete => {}
                        Err(e) => log::warn!(
                            "journal {}: line {} is not a journal entry ({e}); ignored",
                            path.display(),
                            i + 1
                        ),
                    }
                }
                log::info!(
                    "Journal {}: {} image(s) recorded as done",
                    path.display(),
                    done.len()
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("reading journal", path, e)),
        }
        let mut file = crate::fsutil::open_append(path, "opening journal")?;
        // A line cut short by a kill: end it, so that the next entry starts a line of its own.
        if let Ok(meta) = file.metadata()
            && meta.len() > 0
            && std::fs::read(path)
                .map(|b| b.last() != Some(&b'\n'))
                .unwrap_or(false)
        {
            file.write_all(b"\n")
                .map_err(|e| Error::io("writing journal", path, e))?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            done,
        })
    }

    /// The digest an earlier run recorded as done for this source and destination.
    pub fn done(&self, source: &str, destination: &str) -> Option<&str> {
        self.done
            .get(&(source.to_string(), destination.to_string()))
            .map(String::as_str)
    }

    /// How many images earlier runs finished.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether earlier runs finished nothing.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// Append one entry (one `write` of one line).
    pub fn record(&self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_string(entry).expect("an entry serialises");
        line = crate::redact::clean(&line);
        line.push('\n');
        let mut f = self.file.lock().expect("journal");
        f.write_all(line.as_bytes())
            .map_err(|e| Error::io("writing journal", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(src: &str, outcome: Outcome) -> Entry {
        Entry {
            source: format!("docker://s.io/{src}"),
            destination: format!("docker://d.io/m/{src}"),
            digest: format!("sha256:{}", "a".repeat(64)),
            outcome,
            bytes: 10,
            time: "2025-06-01T09:30:12Z".into(),
        }
    }

    #[test]
    fn records_survive_a_kill_and_a_torn_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j.jsonl");
        {
            let j = Journal::open(&p).unwrap();
            assert!(j.is_empty());
            j.record(&entry("a:1", Outcome::Copied)).unwrap();
            j.record(&entry("b:1", Outcome::Failed)).unwrap();
            j.record(&entry("c:1", Outcome::Present)).unwrap();
        }
        // A kill in the middle of a write.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"source":"docker://s.io/d:1","destin"#)
            .unwrap();
        drop(f);
        let j = Journal::open(&p).unwrap();
        assert_eq!(j.len(), 2);
        let e = entry("a:1", Outcome::Copied);
        assert_eq!(j.done(&e.source, &e.destination), Some(e.digest.as_str()));
        let b = entry("b:1", Outcome::Failed);
        assert_eq!(j.done(&b.source, &b.destination), None);
        // The next entry starts a line of its own, and the file reads back whole.
        j.record(&entry("d:1", Outcome::Journaled)).unwrap();
        drop(j);
        let j = Journal::open(&p).unwrap();
        assert_eq!(j.len(), 3);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.ends_with("\n") && text.lines().last().unwrap().contains("d:1"));
        // Another destination is another image.
        assert_eq!(j.done(&e.source, "docker://elsewhere/app:1"), None);
    }

    #[test]
    fn a_link_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "").unwrap();
        let l = d.path().join("j");
        std::os::unix::fs::symlink(&victim, &l).unwrap();
        assert!(Journal::open(&l).is_err());
    }
}
