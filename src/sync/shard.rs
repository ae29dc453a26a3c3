//! Which images of a sync one shard copies (`--shard I/N`, or `--shard-count N` with the index
//! from `JOB_COMPLETION_INDEX`, as a Kubernetes Indexed Job gives it).
//!
//! Every image has a key: its destination repository (`--shard-by repository`, the default:
//! images of one repository share layers, so a layer is uploaded by one shard only) or its
//! destination reference (`--shard-by image`). The shard that owns a key is chosen by
//! rendezvous (highest-random-weight) hashing: each shard `i` scores `sha256(key ‖ i)`, the
//! highest score wins. So every key has exactly one owner — the shards together copy the whole
//! list, no image twice — the choice depends on nothing but the key and N (every process of
//! every shard computes the same), and going from N to N+1 shards moves only the keys the new
//! shard wins, about 1/(N+1) of them.

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The environment variable a Kubernetes Indexed Job sets in each pod.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The most shards ferry accepts (Kubernetes allows 100 000 completions; a sync list never
/// needs more).
pub const MAX_SHARDS: u32 = 10_000;

/// What a shard's part of the list is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardBy {
    /// Whole destination repositories.
    #[default]
    Repository,
    /// Single images.
    Image,
}

impl std::str::FromStr for ShardBy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "repository" => Ok(ShardBy::Repository),
            "image" => Ok(ShardBy::Image),
            other => Err(format!(
                "{other:?} is not a way to shard (repository or image)"
            )),
        }
    }
}

/// One shard: index `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0 … count-1.
    pub index: u32,
    /// How many shards there are.
    pub count: u32,
    /// What is kept together.
    pub by: ShardBy,
}

fn check(index: u32, count: u32, what: &str) -> Result<()> {
    if count == 0 || count > MAX_SHARDS {
        return Err(Error::usage(format!(
            "{what}: the number of shards must be 1 to {MAX_SHARDS}, not {count}"
        )));
    }
    if index >= count {
        return Err(Error::usage(format!(
            "{what}: shard index {index} is not below the number of shards {count} (indices start at 0)"
        )));
    }
    Ok(())
}

impl Shard {
    /// `--shard I/N`.
    pub fn parse(spec: &str, by: ShardBy) -> Result<Shard> {
        let bad = || {
            Error::usage(format!(
                "--shard {spec:?}: expected INDEX/COUNT, e.g. 0/4 (indices start at 0)"
            ))
        };
        let (i, n) = spec.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        check(index, count, "--shard")?;
        Ok(Shard { index, count, by })
    }

    /// `--shard-count N`, the index from `JOB_COMPLETION_INDEX` (`value`).
    pub fn from_completion_index(count: u32, value: Option<&str>, by: ShardBy) -> Result<Shard> {
        let what = format!("--shard-count {count}");
        let v = value.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| {
            Error::usage(format!(
                "{what} takes the shard index from {COMPLETION_INDEX_ENV} (set in each pod of an Indexed Job), which is not set; outside a Job use --shard INDEX/COUNT"
            ))
        })?;
        let index: u32 = v.parse().map_err(|_| {
            Error::usage(format!(
                "{what}: {COMPLETION_INDEX_ENV}={v:?} is not a shard index"
            ))
        })?;
        check(index, count, &what)?;
        Ok(Shard { index, count, by })
    }

    /// Whether this shard copies the image whose destination repository is `repository` and
    /// whose destination reference is `reference`.
    pub fn owns(&self, repository: &str, reference: &str) -> bool {
        let key = match self.by {
            ShardBy::Repository => repository,
            ShardBy::Image => reference,
        };
        owner(key, self.count) == self.index
    }

    /// Whether the ownership of a whole repository is decided by its name alone (repository
    /// sharding: a shard lists the tags of its own repositories only).
    pub fn decides_by_repository(&self) -> bool {
        self.by == ShardBy::Repository
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The rendezvous score of `key` for shard `i`.
fn score(key: &str, i: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0u8]);
    h.update(i.to_be_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The shard of `count` that owns `key` (the highest score; ties to the lower index).
pub fn owner(key: &str, count: u32) -> u32 {
    let mut best = (0u64, 0u32);
    for i in 0..count {
        let s = score(key, i);
        if i == 0 || s > best.0 {
            best = (s, i);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("registry.example.com/team-{}/app-{i}", i % 7))
            .collect()
    }

    #[test]
    fn every_key_has_exactly_one_owner_and_the_split_is_fair() {
        let keys = keys(4000);
        for count in [1u32, 2, 3, 4, 7, 16] {
            let mut per = vec![0usize; count as usize];
            for k in &keys {
                let owners: Vec<u32> = (0..count)
                    .filter(|&i| {
                        Shard {
                            index: i,
                            count,
                            by: ShardBy::Repository,
                        }
                        .owns(k, "unused")
                    })
                    .collect();
                assert_eq!(owners.len(), 1, "{k} owned by {owners:?} of {count}");
                per[owners[0] as usize] += 1;
            }
            // Fair: no shard gets more than 1.3 times its share.
            let share = keys.len() / count as usize;
            assert!(
                per.iter().all(|&n| n * 10 <= share * 13),
                "{count}: {per:?}"
            );
        }
    }

    #[test]
    fn adding_a_shard_moves_only_what_it_takes() {
        let keys = keys(4000);
        for n in [1u32, 2, 4, 8] {
            let moved: Vec<&String> = keys
                .iter()
                .filter(|k| owner(k, n) != owner(k, n + 1))
                .collect();
            // Every key that moves goes to the new shard ...
            assert!(moved.iter().all(|k| owner(k, n + 1) == n), "{n}");
            // ... and about 1/(n+1) of them move.
            let expected = keys.len() / (n as usize + 1);
            assert!(
                moved.len() * 10 <= expected * 13,
                "{n}: {} moved, ~{expected} expected",
                moved.len()
            );
        }
    }

    #[test]
    fn by_image_splits_a_repository() {
        let count = 4;
        let owners: std::collections::BTreeSet<u32> = (0..64)
            .map(|t| owner(&format!("r.io/mirror/app:v{t}"), count))
            .collect();
        assert_eq!(owners.len(), 4);
        let s = Shard {
            index: 0,
            count,
            by: ShardBy::Image,
        };
        let s_repo = Shard {
            by: ShardBy::Repository,
            ..s
        };
        // By repository, the reference does not matter.
        assert_eq!(
            s_repo.owns("r.io/mirror/app", "x"),
            s_repo.owns("r.io/mirror/app", "y")
        );
        assert!(!s.decides_by_repository() && s_repo.decides_by_repository());
    }

    #[test]
    fn stable_across_versions() {
        // The assignment is part of the command's contract: pods of one Job may run different
        // ferry builds. These values must never change.
        assert_eq!(owner("quay.io/team/app", 4), owner("quay.io/team/app", 4));
        let fixed: Vec<u32> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|k| owner(k, 5))
            .collect();
        assert_eq!(fixed, FIXED);
    }

    /// Computed apart from this code, from the definition in the module's documentation
    /// (Python: `hashlib.sha256(key + b"\\0" + i.to_bytes(4, "big"))`, first 8 bytes big-endian).
    const FIXED: [u32; 6] = [4, 2, 3, 4, 3, 4];

    #[test]
    fn parsing() {
        assert_eq!(
            Shard::parse("1/4", ShardBy::Image).unwrap(),
            Shard {
                index: 1,
                count: 4,
                by: ShardBy::Image
            }
        );
        for bad in ["4/4", "1", "a/4", "-1/4", "0/0", "1/4/5", "0/10001"] {
            assert!(Shard::parse(bad, ShardBy::Repository).is_err(), "{bad}");
        }
        let s = Shard::from_completion_index(3, Some("2"), ShardBy::Repository).unwrap();
        assert_eq!(s.to_string(), "2/3");
        let e = Shard::from_completion_index(3, None, ShardBy::Repository).unwrap_err();
        assert!(e.to_string().contains("JOB_COMPLETION_INDEX"), "{e}");
        assert!(Shard::from_completion_index(3, Some("3"), ShardBy::Repository).is_err());
        assert!(Shard::from_completion_index(3, Some("x"), ShardBy::Repository).is_err());
        assert_eq!("image".parse::<ShardBy>().unwrap(), ShardBy::Image);
        assert!("tag".parse::<ShardBy>().is_err());
    }
}
