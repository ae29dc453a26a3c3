//! Token scopes: what a request needs (`repository:ns/app:pull,push`), and whether a cached
//! token granted for one scope serves another.

/// Scopes a request needs, e.g. `repository:ns/app:pull`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(pub(super) Vec<String>);

impl Scope {
    /// Pull access to one repository.
    pub fn pull(repo: &str) -> Self {
        Scope(vec![format!("repository:{repo}:pull")])
    }

    /// Pull and push access to one repository.
    pub fn push(repo: &str) -> Self {
        Scope(vec![format!("repository:{repo}:pull,push")])
    }

    /// Delete access (plus pull) to one repository.
    pub fn delete(repo: &str) -> Self {
        Scope(vec![format!("repository:{repo}:pull,delete")])
    }

    /// Registry-wide catalog access.
    pub fn catalog() -> Self {
        Scope(vec!["registry:catalog:*".into()])
    }

    /// No scope (e.g. for a login check).
    pub fn none() -> Self {
        Scope(vec![])
    }

    /// This scope plus pull access to another repository (for cross-repository mounts).
    pub fn and_pull(mut self, repo: &str) -> Self {
        let s = format!("repository:{repo}:pull");
        if !self
            .0
            .iter()
            .any(|x| x.starts_with(&format!("repository:{repo}:")))
        {
            self.0.push(s);
        }
        self
    }

    /// Whether a token granted for `self` also serves a request needing `other`.
    pub fn covers(&self, other: &Scope) -> bool {
        other.0.iter().all(|want| {
            let Some((res, actions)) = want.rsplit_once(':') else {
                return false;
            };
            self.0.iter().any(|have| {
                have.rsplit_once(':').is_some_and(|(hres, hactions)| {
                    hres == res
                        && actions
                            .split(',')
                            .all(|a| hactions.split(',').any(|h| h == a || h == "*"))
                })
            })
        })
    }

    #[cfg(test)]
    fn key(&self) -> String {
        self.0.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let s = Scope::push("a/b").and_pull("c/d").and_pull("a/b");
        assert_eq!(s.key(), "repository:a/b:pull,push repository:c/d:pull");
        assert!(s.covers(&Scope::pull("a/b")));
        assert!(s.covers(&Scope::push("a/b")));
        assert!(s.covers(&Scope::pull("c/d")));
        assert!(!s.covers(&Scope::push("c/d")));
        assert!(!s.covers(&Scope::pull("a/bb")));
        assert!(s.covers(&Scope::none()));
    }
}
