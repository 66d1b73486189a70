//! The watched model repository, read and written through git2 only (never the `git` CLI).
//!
//! Owns everything the agent learns from git: the branch head, commit metadata, files read
//! from a commit's tree (never the working tree), approval tags and their taggers, and the
//! two writes the product makes: seeding a new repo from the template (`rcfops init`) and
//! creating annotated approval tags (`rcfops approve|promote|reject`).

use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, Signature};

use crate::domain::Action;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RepoError(pub String);

impl From<git2::Error> for RepoError {
    fn from(e: git2::Error) -> Self {
        RepoError(e.message().to_string())
    }
}

pub type Result<T> = std::result::Result<T, RepoError>;

/// The actions a tag name can carry (`approve/`, `promote/`, `reject/`; a rollback is never a
/// tag).
pub const TAG_ACTIONS: [Action; 3] = [Action::Approve, Action::Promote, Action::Reject];

/// A tag in one of the approval namespaces (`approve/`, `promote/`, `reject/`).
#[derive(Debug, Clone)]
pub struct ApprovalTag {
    /// Full short name, e.g. `approve/v3`.
    pub name: String,
    pub action: Action,
    /// The version number, or `None` if the name is malformed.
    pub version: Option<i64>,
    /// The tag object id (annotated) or the target commit id (lightweight).
    pub object: String,
    pub annotated: bool,
    /// The commit the tag points at (peeled), if it points at a commit.
    pub target: Option<String>,
    pub tagger_email: Option<String>,
    pub tagger_name: Option<String>,
    /// Tagger time (unix seconds).
    pub tagged_ts: Option<i64>,
    pub message: String,
    /// The raw tag object (annotated tags), for signature checks.
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: String,
    pub author_email: String,
    pub summary: String,
    pub time: i64,
}

pub struct ModelRepo {
    repo: Repository,
    pub path: PathBuf,
}

/// Whether `name` is a valid branch name for git.
pub fn branch_name_is_valid(name: &str) -> bool {
    git2::Branch::name_is_valid(name) == Ok(true)
}

/// Parses `vN` (N ≥ 1, no sign, no leading zero).
pub fn parse_version(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('v')?;
    if digits.is_empty()
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.len() > 12
    {
        return None;
    }
    digits.parse().ok()
}

impl ModelRepo {
    pub fn open(path: &Path) -> Result<ModelRepo> {
        let repo = Repository::open(path).map_err(|e| {
            RepoError(format!(
                "{}: not a git repository ({}); run `rcfops init` to create it from the template",
                path.display(),
                e.message()
            ))
        })?;
        Ok(ModelRepo {
            repo,
            path: path.to_path_buf(),
        })
    }

    /// The git directory (where refs live), for the watcher.
    pub fn git_dir(&self) -> PathBuf {
        self.repo.path().to_path_buf()
    }

    /// Creates a repo at `path` from `template` with one commit on `branch`; the template
    /// must hold `required` (the pipeline spec).
    pub fn init_from_template(
        template: &Path,
        required: &str,
        path: &Path,
        branch: &str,
    ) -> Result<ModelRepo> {
        if !template.join(required).is_file() {
            return Err(RepoError(format!(
                "template {} has no {required}; set [repo] template in config.toml to a model-build folder",
                template.display(),
            )));
        }
        if path.join(".git").exists() {
            return Err(RepoError(format!(
                "{} is already a git repository",
                path.display()
            )));
        }
        std::fs::create_dir_all(path)
            .map_err(|e| RepoError(format!("cannot create {}: {e}", path.display())))?;
        copy_tree(template, path)
            .map_err(|e| RepoError(format!("cannot copy the template: {e}")))?;
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head(branch);
        let repo = Repository::init_opts(path, &opts)?;
        {
            let mut index = repo.index()?;
            index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
            index.write()?;
            let tree_id = index.write_tree()?;
            let tree = repo.find_tree(tree_id)?;
            // The seed commit is the tool's, not a person's: its author must not block anyone's
            // promotion under separation of duties.
            let sig = Signature::now("rcfops", "rcfops@localhost")?;
            repo.commit(
                Some(&format!("refs/heads/{branch}")),
                &sig,
                &sig,
                "Initial model-build repository from the rcfops template",
                &tree,
                &[],
            )?;
        }
        Ok(ModelRepo {
            repo,
            path: path.to_path_buf(),
        })
    }

    /// The commit at the tip of `branch`, if the branch exists.
    pub fn head(&self, branch: &str) -> Result<Option<String>> {
        match self.repo.find_branch(branch, git2::BranchType::Local) {
            Ok(b) => Ok(b.get().peel_to_commit().ok().map(|c| c.id().to_string())),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn commit_info(&self, id: &str) -> Result<CommitInfo> {
        let c = self.repo.find_commit(Oid::from_str(id)?)?;
        let author = c.author();
        Ok(CommitInfo {
            id: id.to_string(),
            author_email: author.email().unwrap_or("").to_string(),
            summary: c.summary().unwrap_or("").to_string(),
            time: c.time().seconds(),
        })
    }

    /// Resolves a revision (sha, branch, `HEAD`, ...) to a commit id.
    pub fn resolve(&self, rev: &str) -> Result<String> {
        let obj = self
            .repo
            .revparse_single(rev)
            .map_err(|e| RepoError(format!("cannot resolve {rev:?}: {}", e.message())))?;
        Ok(obj.peel_to_commit()?.id().to_string())
    }

    /// The tree entry at `path` in the commit, if there is one.
    fn tree_entry(&self, commit: &str, path: &str) -> Result<Option<git2::TreeEntry<'static>>> {
        let c = self.repo.find_commit(Oid::from_str(commit)?)?;
        match c.tree()?.get_path(Path::new(path)) {
            Ok(e) => Ok(Some(e)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads `path` from the commit's tree. `Ok(None)` when the file is not in the commit.
    pub fn read_file(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(entry) = self.tree_entry(commit, path)? else {
            return Ok(None);
        };
        let obj = entry.to_object(&self.repo)?;
        match obj.into_blob() {
            Ok(b) => Ok(Some(b.content().to_vec())),
            Err(_) => Err(RepoError(format!(
                "{path} in commit {} is not a file",
                &commit[..commit.len().min(12)]
            ))),
        }
    }

    /// Size in bytes of `path` in the commit's tree, read from the object header (the blob is
    /// not loaded). `Ok(None)` when the file is not in the commit.
    pub fn file_size(&self, commit: &str, path: &str) -> Result<Option<u64>> {
        let Some(entry) = self.tree_entry(commit, path)? else {
            return Ok(None);
        };
        let (size, _) = self.repo.odb()?.read_header(entry.id())?;
        Ok(Some(size as u64))
    }

    /// First-parent ancestors of `tip` (excluding it), newest first, stopping at `stop`, at a
    /// root, or after `limit` commits.
    pub fn first_parent_range(
        &self,
        tip: &str,
        stop: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut c = self.repo.find_commit(Oid::from_str(tip)?)?;
        while out.len() < limit {
            let Ok(p) = c.parent(0) else { break };
            let id = p.id().to_string();
            if Some(id.as_str()) == stop {
                break;
            }
            out.push(id);
            c = p;
        }
        Ok(out)
    }

    pub fn is_ancestor(&self, ancestor: &str, of: &str) -> Result<bool> {
        let a = Oid::from_str(ancestor)?;
        let b = Oid::from_str(of)?;
        if a == b {
            return Ok(true);
        }
        Ok(self.repo.graph_descendant_of(b, a).unwrap_or(false))
    }

    /// Every tag under `approve/`, `promote/` or `reject/`.
    pub fn approval_tags(&self) -> Result<Vec<ApprovalTag>> {
        let mut out = Vec::new();
        let refs = self.repo.references_glob("refs/tags/*")?;
        for r in refs {
            let r = r?;
            let Some(full) = r.name() else { continue };
            let name = full.trim_start_matches("refs/tags/").to_string();
            let Some((ns, rest)) = name.split_once('/') else {
                continue;
            };
            let Some(action) = ns.parse().ok().filter(|a| TAG_ACTIONS.contains(a)) else {
                continue;
            };
            let Some(oid) = r.target() else { continue };
            let obj = self.repo.find_object(oid, None)?;
            let mut tag = ApprovalTag {
                version: parse_version(rest),
                name: name.clone(),
                action,
                object: oid.to_string(),
                annotated: false,
                target: None,
                tagger_email: None,
                tagger_name: None,
                tagged_ts: None,
                message: String::new(),
                raw: Vec::new(),
            };
            if obj.kind() == Some(ObjectType::Tag) {
                let t = obj.as_tag().expect("tag object");
                tag.annotated = true;
                if let Some(s) = t.tagger() {
                    tag.tagger_email = s.email().map(str::to_string);
                    tag.tagger_name = s.name().map(str::to_string);
                    tag.tagged_ts = Some(s.when().seconds());
                }
                tag.message = t.message().unwrap_or("").trim().to_string();
                if let Ok(db) = self.repo.odb() {
                    if let Ok(o) = db.read(oid) {
                        tag.raw = o.data().to_vec();
                    }
                }
            }
            tag.target = obj
                .peel(ObjectType::Commit)
                .ok()
                .map(|c| c.id().to_string());
            out.push(tag);
        }
        Ok(out)
    }

    /// Creates annotated tag `name` on `commit` as the repo's configured user.
    pub fn create_tag(&self, name: &str, commit: &str, message: &str) -> Result<String> {
        let obj = self
            .repo
            .find_object(Oid::from_str(commit)?, Some(ObjectType::Commit))?;
        let sig = self.repo.signature().map_err(|_| {
            RepoError(
                "git has no user identity for the tag: set it with `git config --global user.name NAME` and `git config --global user.email EMAIL`".into(),
            )
        })?;
        let oid = self.repo.tag(name, &obj, &sig, message, false).map_err(|e| {
            if e.code() == git2::ErrorCode::Exists {
                RepoError(format!("tag {name} already exists; delete it first (git tag -d {name}) to replace it"))
            } else {
                e.into()
            }
        })?;
        Ok(oid.to_string())
    }

    /// Makes `git tag -a` in this repo sign with the SSH key at `signing_key` (local git
    /// config: `gpg.format = ssh`, `user.signingKey`, `tag.gpgSign = true`).
    pub fn configure_ssh_signing(&self, signing_key: &Path) -> Result<()> {
        let mut c = self.repo.config()?.open_level(git2::ConfigLevel::Local)?;
        c.set_str("gpg.format", "ssh")?;
        c.set_str("user.signingKey", &signing_key.display().to_string())?;
        c.set_bool("tag.gpgSign", true)?;
        Ok(())
    }

    /// Deletes tag `name` if it is still the tag object `oid` (a tag someone replaced since is
    /// left alone); returns whether it was deleted.
    pub fn delete_tag_if(&self, name: &str, oid: &str) -> Result<bool> {
        let current = match self.repo.refname_to_id(&format!("refs/tags/{name}")) {
            Ok(id) => id,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if current.to_string() != oid {
            return Ok(false);
        }
        self.repo.tag_delete(name)?;
        Ok(true)
    }

    /// The identity git would use for a tag or commit here (name, e-mail).
    pub fn identity(&self) -> Option<(String, String)> {
        let s = self.repo.signature().ok()?;
        Some((s.name()?.to_string(), s.email()?.to_string()))
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn version_names() {
        assert_eq!(parse_version("v1"), Some(1));
        assert_eq!(parse_version("v42"), Some(42));
        for bad in ["1", "v", "v0", "v01", "v-1", "v1a", "V1", "v+1"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }
}
