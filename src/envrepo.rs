//! The GitOps environment repo (through git2): a folder per project and stage holding the
//! rendered manifests, one commit per change of what a stage should run. Its history is the
//! deployment history.
//!
//! [`EnvRepo::converge`] is level-triggered: it compares the branch head's tree with the
//! desired files of one folder and commits only when they differ, so calling it again (after a
//! crash between render and commit, or on every pass) does nothing twice. The commit is built
//! in the object database, then the work tree is checked out to it; a repo with uncommitted
//! changes or on another branch is refused, so nobody's edits are overwritten.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Signature};

/// Why the environment repo could not take a render; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EnvRepoError {
    #[error("the environment repo {0} does not exist: create it (`rcfops init` does) or fix [kubernetes] env_repo")]
    Missing(PathBuf),
    #[error("the environment repo {path} has uncommitted changes ({what}): commit or discard them; rcfops will not overwrite them")]
    Dirty { path: PathBuf, what: String },
    #[error("the environment repo {path} is on {current}, not {want}: check out {want} (or set [kubernetes] env_branch)")]
    WrongBranch {
        path: PathBuf,
        current: String,
        want: String,
    },
    #[error("environment repo {path}: {source}")]
    Git {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
}

/// One environment repo on one branch.
pub struct EnvRepo {
    path: PathBuf,
    branch: String,
    repo: Repository,
}

/// The folder's state on the branch head: its commit and whether it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converged {
    /// Already as desired at this commit: nothing written.
    Unchanged(String),
    /// A new commit.
    Committed(String),
}

impl Converged {
    pub fn commit(&self) -> &str {
        match self {
            Converged::Unchanged(c) | Converged::Committed(c) => c,
        }
    }
}

impl EnvRepo {
    /// Creates the repo with an empty first commit on `branch` when `path` holds none.
    pub fn init(path: &Path, branch: &str) -> Result<EnvRepo, EnvRepoError> {
        let git = |source| EnvRepoError::Git {
            path: path.to_path_buf(),
            source,
        };
        if Repository::open(path).is_err() {
            let mut opts = git2::RepositoryInitOptions::new();
            opts.initial_head(branch);
            let repo = Repository::init_opts(path, &opts).map_err(git)?;
            let tree = {
                let mut index = repo.index().map_err(git)?;
                let id = index.write_tree().map_err(git)?;
                repo.find_tree(id).map_err(git)?
            };
            let sig = signature().map_err(git)?;
            repo.commit(
                Some("HEAD"),
                &sig,
                &sig,
                "Environment repo for rcfops: one folder per project and stage",
                &tree,
                &[],
            )
            .map_err(git)?;
        }
        EnvRepo::open(path, branch)
    }

    pub fn open(path: &Path, branch: &str) -> Result<EnvRepo, EnvRepoError> {
        let repo = Repository::open(path).map_err(|_| EnvRepoError::Missing(path.to_path_buf()))?;
        Ok(EnvRepo {
            path: path.to_path_buf(),
            branch: branch.to_string(),
            repo,
        })
    }

    fn git(&self) -> impl Fn(git2::Error) -> EnvRepoError + '_ {
        |source| EnvRepoError::Git {
            path: self.path.clone(),
            source,
        }
    }

    /// Refuses a repo on another branch or with uncommitted changes.
    fn check_clean(&self) -> Result<(), EnvRepoError> {
        let head = self.repo.head().map_err(self.git())?;
        let current = head.shorthand().unwrap_or("(detached)").to_string();
        if !head.is_branch() || current != self.branch {
            return Err(EnvRepoError::WrongBranch {
                path: self.path.clone(),
                current,
                want: self.branch.clone(),
            });
        }
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true);
        let statuses = self.repo.statuses(Some(&mut opts)).map_err(self.git())?;
        let dirty: Vec<String> = statuses
            .iter()
            .filter(|s| s.status() != git2::Status::CURRENT && s.status() != git2::Status::IGNORED)
            .filter_map(|s| s.path().map(str::to_string))
            .collect();
        if !dirty.is_empty() && self.finish_interrupted_checkout(&statuses)? {
            return Ok(());
        }
        if !dirty.is_empty() {
            return Err(EnvRepoError::Dirty {
                path: self.path.clone(),
                what: dirty.join(", "),
            });
        }
        Ok(())
    }

    /// A crash between moving the branch to rcfops's commit and checking it out leaves the
    /// index and work tree at the commit before. Recognise exactly that (only index-vs-HEAD
    /// differences, the index being the parent's tree, the head being rcfops's) and finish
    /// the checkout; anything else is someone's change.
    fn finish_interrupted_checkout(
        &self,
        statuses: &git2::Statuses<'_>,
    ) -> Result<bool, EnvRepoError> {
        let git = self.git();
        let wt = git2::Status::WT_NEW
            | git2::Status::WT_MODIFIED
            | git2::Status::WT_DELETED
            | git2::Status::WT_RENAMED
            | git2::Status::WT_TYPECHANGE;
        if statuses.iter().any(|s| s.status().intersects(wt)) {
            return Ok(false);
        }
        let head = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(&git)?;
        if head.author().name() != Some("rcfops") || head.parent_count() != 1 {
            return Ok(false);
        }
        let parent_tree = head.parent(0).and_then(|p| p.tree()).map_err(&git)?;
        let index_tree = self
            .repo
            .index()
            .and_then(|mut i| i.write_tree())
            .map_err(&git)?;
        if index_tree != parent_tree.id() {
            return Ok(false);
        }
        self.repo
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .map_err(&git)?;
        Ok(true)
    }

    /// The newest commit on the branch that changed `dir`: the one that renders what it
    /// holds now.
    pub fn last_change(&self, dir: &str) -> Result<Option<String>, EnvRepoError> {
        let git = self.git();
        let entry_id = |c: &git2::Commit<'_>| -> Option<Oid> {
            c.tree().ok()?.get_path(Path::new(dir)).ok().map(|e| e.id())
        };
        let mut walk = self.repo.revwalk().map_err(&git)?;
        walk.push_ref(&format!("refs/heads/{}", self.branch))
            .map_err(&git)?;
        walk.simplify_first_parent().map_err(&git)?;
        for id in walk {
            let c = self.repo.find_commit(id.map_err(&git)?).map_err(&git)?;
            let mine = entry_id(&c);
            let parent = c.parent(0).ok().and_then(|p| entry_id(&p));
            if mine != parent {
                return Ok(Some(c.id().to_string()));
            }
        }
        Ok(None)
    }

    /// The branch head commit.
    pub fn head(&self) -> Result<String, EnvRepoError> {
        let c = self
            .repo
            .revparse_single(&format!("refs/heads/{}", self.branch))
            .map_err(self.git())?;
        Ok(c.id().to_string())
    }

    /// Makes `dir` (e.g. `card-fraud/production`) hold exactly `files` (none: the folder is
    /// removed), committing with `message` when that changes the tree.
    pub fn converge(
        &self,
        dir: &str,
        files: &[(&str, String)],
        message: &str,
    ) -> Result<Converged, EnvRepoError> {
        self.check_clean()?;
        let git = self.git();
        let head = self
            .repo
            .find_reference(&format!("refs/heads/{}", self.branch))
            .map_err(&git)?
            .peel_to_commit()
            .map_err(&git)?;
        let base = head.tree().map_err(&git)?;
        let mut tb = git2::build::TreeUpdateBuilder::new();
        // Remove what the folder holds and should not, then write the desired files.
        if let Ok(entry) = base.get_path(Path::new(dir)) {
            if let Ok(t) = entry.to_object(&self.repo).and_then(|o| o.peel_to_tree()) {
                for e in t.iter() {
                    if let Some(name) = e.name() {
                        if !files.iter().any(|(f, _)| *f == name) {
                            tb.remove(format!("{dir}/{name}"));
                        }
                    }
                }
            }
        }
        for (name, text) in files {
            let blob = self.repo.blob(text.as_bytes()).map_err(&git)?;
            tb.upsert(format!("{dir}/{name}"), blob, git2::FileMode::Blob);
        }
        let tree_id = tb.create_updated(&self.repo, &base).map_err(&git)?;
        if tree_id == base.id() {
            return Ok(Converged::Unchanged(head.id().to_string()));
        }
        let tree = self.repo.find_tree(tree_id).map_err(&git)?;
        let sig = signature().map_err(&git)?;
        let id: Oid = self
            .repo
            .commit(
                Some(&format!("refs/heads/{}", self.branch)),
                &sig,
                &sig,
                message,
                &tree,
                &[&head],
            )
            .map_err(&git)?;
        crate::failpoint::hit("envrepo.after-ref");
        // The work tree follows the branch (it was clean, so nothing is lost).
        self.repo
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .map_err(&git)?;
        Ok(Converged::Committed(id.to_string()))
    }
}

fn signature() -> Result<Signature<'static>, git2::Error> {
    Signature::now("rcfops", "rcfops@localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(v: &str) -> Vec<(&'static str, String)> {
        vec![
            (
                "kustomization.yaml",
                "resources:\n  - deployment.yaml\n".into(),
            ),
            ("deployment.yaml", format!("version: {v}\n")),
        ]
    }

    #[test]
    fn converge_commits_once_and_rolls_back_as_a_new_commit() {
        let dir = tempfile::tempdir().unwrap();
        let env = EnvRepo::init(&dir.path().join("env"), "main").unwrap();
        let first = env.head().unwrap();
        let c1 = env.converge("p/production", &files("1"), "v1").unwrap();
        assert!(matches!(c1, Converged::Committed(_)));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("env/p/production/deployment.yaml")).unwrap(),
            "version: 1\n"
        );
        // The same render: no commit.
        let again = env.converge("p/production", &files("1"), "v1").unwrap();
        assert_eq!(again, Converged::Unchanged(c1.commit().to_string()));
        let c2 = env.converge("p/production", &files("2"), "v2").unwrap();
        let back = env
            .converge("p/production", &files("1"), "rollback to v1")
            .unwrap();
        assert!(matches!(back, Converged::Committed(_)));
        assert_ne!(back.commit(), c1.commit(), "a rollback is a new commit");
        let repo = Repository::open(dir.path().join("env")).unwrap();
        let mut walk = repo.revwalk().unwrap();
        walk.push_head().unwrap();
        let ids: Vec<String> = walk.map(|i| i.unwrap().to_string()).collect();
        assert_eq!(
            ids,
            [back.commit(), c2.commit(), c1.commit(), first.as_str()]
        );
        // Withdrawn: the folder goes.
        env.converge("p/production", &[], "withdrawn").unwrap();
        assert!(!dir.path().join("env/p/production").exists());
    }

    #[test]
    fn dirty_or_wrong_branch_repos_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        let env = EnvRepo::init(&path, "main").unwrap();
        env.converge("p/staging", &files("1"), "v1").unwrap();
        let head = env.head().unwrap();
        std::fs::write(path.join("p/staging/deployment.yaml"), "hand edit\n").unwrap();
        let e = env.converge("p/staging", &files("2"), "v2").unwrap_err();
        assert!(e.to_string().contains("uncommitted changes"), "{e}");
        assert_eq!(env.head().unwrap(), head);
        assert_eq!(
            std::fs::read_to_string(path.join("p/staging/deployment.yaml")).unwrap(),
            "hand edit\n"
        );
        let other = EnvRepo::open(&path, "release").unwrap();
        let e = other.converge("p/staging", &files("2"), "v2").unwrap_err();
        assert!(e.to_string().contains("not release"), "{e}");
        let e = EnvRepo::open(&dir.path().join("nope"), "main")
            .err()
            .unwrap();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn a_crash_between_commit_and_checkout_is_finished_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        let env = EnvRepo::init(&path, "main").unwrap();
        let c1 = env.converge("p/staging", &files("1"), "v1").unwrap();
        let c2 = env.converge("p/staging", &files("2"), "v2").unwrap();
        // As if the process died right after moving the branch: index and work tree at v1.
        let repo = Repository::open(&path).unwrap();
        let v1 = repo
            .find_object(Oid::from_str(c1.commit()).unwrap(), None)
            .unwrap();
        repo.reset(&v1, git2::ResetType::Hard, None).unwrap();
        repo.reference(
            "refs/heads/main",
            Oid::from_str(c2.commit()).unwrap(),
            true,
            "crash",
        )
        .unwrap();
        let again = env.converge("p/staging", &files("2"), "v2").unwrap();
        assert_eq!(again, Converged::Unchanged(c2.commit().to_string()));
        assert_eq!(
            std::fs::read_to_string(path.join("p/staging/deployment.yaml")).unwrap(),
            "version: 2\n"
        );
        // A hand edit is still refused.
        std::fs::write(path.join("p/staging/deployment.yaml"), "edit\n").unwrap();
        assert!(env.converge("p/staging", &files("3"), "v3").is_err());
        let e = EnvRepo::open(&dir.path().join("nope"), "main")
            .err()
            .unwrap();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
