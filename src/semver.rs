//! Semantic-version tags and constraints, as skopeo's `sync` reads `images-by-semver`.
//!
//! skopeo parses tags with `semver.NewVersion` and constraints with `semver.NewConstraint` of
//! Masterminds/semver v3, whose rules differ from Cargo's (the `semver` crate): a tag may
//! carry a `v` and omit its minor or patch number (`v1.2` is 1.2.0); constraints are ANDed by
//! commas or spaces and ORed by `||`; `1.2 - 1.4` is a range; `x`, `X` and `*` are
//! wildcards; `~`, `~>`, `^`, `!=`, `=>` and `=<` are operators; a prerelease tag only
//! satisfies a constraint that names a prerelease itself. This module follows those rules.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

/// The version part of a constraint (Masterminds' `cvRegex`).
const CV: &str = r"v?([0-9xX*]+)(\.[0-9xX*]+)?(\.[0-9xX*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
/// Operators, in Masterminds' order (the empty operator second).
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

static VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$")
        .expect("version regex")
});
static ONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^\s*({OPS})\s*({CV})\s*$")).expect("constraint regex"));
static RANGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"\s*({CV})\s+-\s+({CV})\s*")).expect("range regex"));
static FIND: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"({OPS})\s*({CV})")).expect("find regex"));
static VALID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^(\s*({OPS})\s*({CV})\s*)((?:\s+|,\s*)({OPS})\s*({CV})\s*)*$"
    ))
    .expect("valid regex")
});

/// A version read from a tag: `[v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

impl Version {
    /// The version a tag names, or `None` when the tag is not a semantic version (such tags
    /// are skipped, as skopeo skips them).
    pub fn parse(tag: &str) -> Option<Version> {
        let m = VERSION.captures(tag)?;
        let num = |i: usize| -> Option<u64> {
            match m.get(i) {
                None => Some(0),
                Some(s) => s.as_str().trim_start_matches('.').parse().ok(),
            }
        };
        let pre = m.get(5).map_or("", |p| p.as_str()).to_string();
        // A numeric prerelease identifier has no leading zero (semver 2.0.0, item 9).
        if pre
            .split('.')
            .any(|p| p.len() > 1 && p.starts_with('0') && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        Some(Version {
            major: num(1)?,
            minor: num(2)?,
            patch: num(3)?,
            pre,
        })
    }

    fn cmp(&self, o: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &o.pre),
            })
    }
}

/// Prerelease precedence: identifier by identifier; numbers numerically and below words;
/// a longer list wins when the shorter is its prefix.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        let o = match (x, y) {
            (Some(x), Some(y)) if x == y => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                (Err(_), Err(_)) => x.cmp(y),
            },
            (None, None) => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

#[derive(Debug, Clone)]
struct Constraint {
    op: Op,
    con: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

/// A constraint such as `>= 1.2, < 2 || ~3.1`.
#[derive(Debug, Clone)]
pub struct Constraints {
    any_of: Vec<Vec<Constraint>>,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

/// A constraint (the text given) that is not one Masterminds/semver accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("improper constraint: {0:?}")]
pub struct ImproperConstraint(pub String);

impl Constraints {
    /// Parse a constraint; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Constraints, ImproperConstraint> {
        let rewritten = rewrite_ranges(text);
        let mut any_of = Vec::new();
        for segment in rewritten.split("||") {
            if !VALID.is_match(segment) {
                return Err(ImproperConstraint(segment.trim().to_string()));
            }
            let all_of = FIND
                .find_iter(segment)
                .map(|m| parse_one(m.as_str()))
                .collect::<Result<Vec<_>, _>>()?;
            any_of.push(all_of);
        }
        Ok(Constraints { any_of })
    }

    /// Whether `v` satisfies the constraint.
    pub fn matches(&self, v: &Version) -> bool {
        self.any_of.iter().any(|all| all.iter().all(|c| c.check(v)))
    }

    /// Whether the tag is a semantic version that satisfies the constraint.
    pub fn matches_tag(&self, tag: &str) -> bool {
        Version::parse(tag).is_some_and(|v| self.matches(&v))
    }
}

/// `A - B` → `>= A, <= B`.
fn rewrite_ranges(text: &str) -> String {
    let mut out = text.to_string();
    for c in RANGE.captures_iter(text) {
        let (whole, a, b) = (&c[0], &c[1], &c[11]);
        out = out.replacen(whole, &format!(">= {a}, <= {b}"), 1);
    }
    out
}

fn parse_one(s: &str) -> Result<Constraint, ImproperConstraint> {
    let m = ONE
        .captures(s)
        .ok_or_else(|| ImproperConstraint(s.trim().to_string()))?;
    let op = match &m[1] {
        "" | "=" => Op::TildeOrEqual,
        "!=" => Op::NotEqual,
        ">" => Op::Greater,
        "<" => Op::Less,
        ">=" | "=>" => Op::GreaterEqual,
        "<=" | "=<" => Op::LessEqual,
        "~" | "~>" => Op::Tilde,
        _ => Op::Caret,
    };
    let part = |i: usize| m.get(i).map_or("", |x| x.as_str());
    let (major, minor, patch, pre) = (part(3), part(4), part(5), part(6));
    let trim = |p: &str| p.trim_start_matches('.').to_string();
    let (ver, dirty, minor_dirty, patch_dirty) = if is_x(major) {
        (format!("0.0.0{pre}"), true, false, false)
    } else if minor.is_empty() || is_x(&trim(minor)) {
        (format!("{major}.0.0{pre}"), true, true, false)
    } else if patch.is_empty() || is_x(&trim(patch)) {
        (format!("{major}{minor}.0{pre}"), true, false, true)
    } else {
        (m[2].to_string(), false, false, false)
    };
    let con = Version::parse(&ver).ok_or_else(|| ImproperConstraint(s.trim().to_string()))?;
    Ok(Constraint {
        op,
        con,
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

impl Constraint {
    fn check(&self, v: &Version) -> bool {
        // A prerelease only satisfies a constraint that names a prerelease.
        if !v.pre.is_empty() && self.con.pre.is_empty() {
            return false;
        }
        let c = &self.con;
        match self.op {
            Op::TildeOrEqual if self.dirty => self.tilde(v),
            Op::TildeOrEqual => v.cmp(c) == Ordering::Equal,
            Op::NotEqual => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    }
                    if self.minor_dirty {
                        return false;
                    }
                    if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    }
                    if self.patch_dirty {
                        if !v.pre.is_empty() || !c.pre.is_empty() {
                            return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                        }
                        return false;
                    }
                }
                v.cmp(c) != Ordering::Equal
            }
            Op::Greater => {
                if !self.dirty {
                    return v.cmp(c) == Ordering::Greater;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_dirty {
                    return false;
                }
                if self.patch_dirty {
                    return v.minor > c.minor;
                }
                v.cmp(c) == Ordering::Greater
            }
            Op::Less => v.cmp(c) == Ordering::Less,
            Op::GreaterEqual => v.cmp(c) != Ordering::Less,
            Op::LessEqual => {
                if !self.dirty {
                    return v.cmp(c) != Ordering::Greater;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.cmp(c) == Ordering::Less {
            return false;
        }
        if (c.major, c.minor, c.patch) == (0, 0, 0) && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.cmp(c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == c.patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(constraint: &str, tags: &[&str]) {
        let c = Constraints::parse(constraint).unwrap_or_else(|e| panic!("{constraint}: {e}"));
        for t in tags {
            assert!(c.matches_tag(t), "{constraint:?} should accept {t:?}");
        }
    }

    fn no(constraint: &str, tags: &[&str]) {
        let c = Constraints::parse(constraint).unwrap();
        for t in tags {
            assert!(!c.matches_tag(t), "{constraint:?} should refuse {t:?}");
        }
    }

    #[test]
    fn versions_as_masterminds_reads_tags() {
        let v = |s| Version::parse(s);
        assert_eq!(v("1.2.3"), v("v1.2.3"));
        assert_eq!(v("1"), v("1.0.0"));
        assert_eq!(v("v1.2"), v("1.2.0"));
        assert_eq!(
            v("1.2.3+build.7").unwrap().cmp(&v("1.2.3").unwrap()),
            Ordering::Equal
        );
        for bad in [
            "latest",
            "",
            "v",
            "1.2.3.4",
            "1.2.3-",
            "1.2.3-01",
            "x1",
            "1.2.3_rc",
            "sha256-abc.sig",
        ] {
            assert_eq!(v(bad), None, "{bad}");
        }
        // Prerelease precedence (semver 2.0.0, item 11).
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for w in order.windows(2) {
            assert_eq!(
                v(w[0]).unwrap().cmp(&v(w[1]).unwrap()),
                Ordering::Less,
                "{w:?}"
            );
        }
    }

    #[test]
    fn comparisons_and_and_or() {
        ok(">= 3.17", &["3.17", "v3.17.0", "3.18.2", "4.0.0"]);
        no(">= 3.17", &["3.16.9", "3.17.1-rc1", "latest", "edge"]);
        ok(">=1.2.0, <2.0.0", &["1.2.0", "1.9.9"]);
        ok(">=1.2.0 <2.0.0", &["1.2.0", "1.9.9"]);
        no(">=1.2.0 <2.0.0", &["2.0.0", "1.1.9"]);
        ok("<1.2 || >=3", &["1.1.9", "3.0.0", "4"]);
        no("<1.2 || >=3", &["1.2.0", "2.9"]);
        ok("!=1.2.3", &["1.2.4"]);
        no("!=1.2.3", &["1.2.3", "v1.2.3"]);
        ok("=> 1.2, =< 1.4", &["1.3"]);
        ok("1.2.3", &["v1.2.3"]);
        no("1.2.3", &["1.2.4"]);
    }

    #[test]
    fn wildcards_tilde_caret_ranges() {
        ok("1.2.x", &["1.2.0", "1.2.9"]);
        no("1.2.x", &["1.3.0", "1.1.9"]);
        ok("*", &["0.0.1", "9.9.9"]);
        no("*", &["1.0.0-rc1"]);
        ok("~1.2.3", &["1.2.3", "1.2.9"]);
        no("~1.2.3", &["1.3.0", "1.2.2"]);
        ok("~1", &["1.0.0", "1.9.0"]);
        no("~1", &["2.0.0"]);
        ok("~>2.0", &["2.0.5"]);
        ok("^1.2.3", &["1.2.3", "1.9.0"]);
        no("^1.2.3", &["2.0.0", "1.2.2"]);
        ok("^0.2.3", &["0.2.3", "0.2.9"]);
        no("^0.2.3", &["0.3.0"]);
        ok("^0.0.3", &["0.0.3"]);
        no("^0.0.3", &["0.0.4"]);
        ok("^0", &["0.9.9"]);
        no("^0", &["1.0.0"]);
        // `<= 3.13` takes the whole 3.13 series, as Masterminds' wildcard rule says.
        ok("3.12 - 3.13", &["3.12.0", "3.13.0", "3.13.9"]);
        no("3.12 - 3.13", &["3.14.0", "3.11.9"]);
        ok("> 11", &["12.0.0"]);
        no("> 11", &["11.9.0"]);
        ok("> 11.1", &["11.2.0"]);
        no("> 11.1", &["11.1.9"]);
        ok("<= 1.2", &["1.2.9"]);
        no("<= 1.2", &["1.3.0"]);
        no("!=1.2.x", &["1.2.5"]);
        ok("!=1.2.x", &["1.3.0"]);
    }

    #[test]
    fn prereleases_only_for_constraints_that_name_one() {
        ok(">=1.0.0-rc.1", &["1.0.0-rc.2", "1.0.0"]);
        no(">=1.0.0", &["1.0.1-rc.1"]);
    }

    #[test]
    fn improper_constraints_are_errors() {
        for bad in ["", "latest", ">>1", "1.2 -", ">= 1.2 ||", "~>", "1.2.3.4"] {
            assert!(Constraints::parse(bad).is_err(), "{bad:?}");
        }
    }
}
