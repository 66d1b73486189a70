//! Approval requests, before judgement: read from approval tags (via `repo`) and from the files
//! in the approvals folder, with what is wrong with their form already found.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use crate::artifacts::sha256_hex;
use crate::domain::{Action, ApprovalSource, Method, Stage};
use crate::repo::ApprovalTag;

use super::file::{ApprovalFile, MAX_FILE};

/// Trailer `rcfops approve|promote|reject` adds to the tags it creates, so the audit can tell a
/// CLI approval from a hand-made tag.
pub const CLI_TRAILER: &str = "Approved-with: rcfops-cli";

/// Trailer of a tag message that asks for a reject that leaves a stage without a model.
pub const FORCE_TRAILER: &str = "Force: true";

/// One approval request from any source, before judgement.
#[derive(Debug, Clone)]
pub struct Request {
    pub source: ApprovalSource,
    /// How log lines name it: `tag approve/v3`, `approval file x.toml`.
    pub label: String,
    /// `None` when a file could not be read far enough to tell.
    pub action: Option<Action>,
    pub version: Option<i64>,
    /// The stage a rollback names.
    pub stage: Option<Stage>,
    pub commit: Option<String>,
    pub approver: String,
    pub method: Method,
    pub given_ts: f64,
    /// A defect found while reading the source (lightweight tag, malformed name or file).
    pub defect: Option<String>,
    /// The raw tag object, for signature checks (empty for files).
    pub raw: Vec<u8>,
    /// The approver's words: the tag message (without a signature) or the file's `reason`.
    pub note: String,
    /// Asked to leave a stage without a model if need be (`Force: true` / `force = true`).
    pub forced: bool,
}

fn is_force_trailer(line: &str) -> bool {
    line.trim().eq_ignore_ascii_case(FORCE_TRAILER)
}

fn tag_defect(t: &ApprovalTag) -> Option<String> {
    if !t.annotated {
        Some(format!(
            "lightweight tag {} ignored: approval tags must be annotated (git tag -a {} -m \"...\") so they carry the approver and the time",
            t.name, t.name
        ))
    } else if t.version.is_none() {
        Some(format!(
            "tag {} ignored: the name must be {}/vN with N a version number, e.g. {}/v1",
            t.name, t.action, t.action
        ))
    } else if t.tagger_email.is_none() || t.tagged_ts.is_none() {
        Some(format!(
            "tag {} ignored: it has no tagger, so it names no approver and no time; create it with git tag -a",
            t.name
        ))
    } else if t.target.is_none() {
        Some(format!("tag {} does not point at a commit", t.name))
    } else {
        None
    }
}

pub fn from_tag(t: &ApprovalTag) -> Request {
    let text = t
        .message
        .split("-----BEGIN SSH SIGNATURE-----")
        .next()
        .unwrap_or("");
    Request {
        source: ApprovalSource::Tag {
            name: t.name.clone(),
            object: t.object.clone(),
        },
        label: format!("tag {}", t.name),
        action: Some(t.action),
        version: t.version,
        stage: None,
        commit: t.target.clone(),
        approver: t.tagger_email.clone().unwrap_or_default(),
        method: if t.message.lines().any(|l| l.trim() == CLI_TRAILER) {
            Method::Cli
        } else {
            Method::Tag
        },
        given_ts: t.tagged_ts.unwrap_or(0) as f64,
        defect: tag_defect(t),
        raw: t.raw.clone(),
        note: text
            .lines()
            .filter(|l| l.trim() != CLI_TRAILER && !is_force_trailer(l))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string(),
        forced: text.lines().any(is_force_trailer),
    }
}

/// Approval files already read, by name, with the size and modification time they had, so a
/// pass only reads files that are new or changed.
#[derive(Debug, Default)]
pub struct FileCache(HashMap<String, (u64, Option<SystemTime>, Request)>);

impl FileCache {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A request for file `name` whose content is identified by `digest`.
fn file_request(name: &str, digest: String) -> Request {
    Request {
        source: ApprovalSource::File {
            name: name.to_string(),
            digest,
        },
        label: format!("approval file {name}"),
        action: None,
        version: None,
        stage: None,
        commit: None,
        approver: String::new(),
        method: Method::File,
        given_ts: 0.0,
        defect: None,
        raw: Vec::new(),
        note: String::new(),
        forced: false,
    }
}

/// The request a file's bytes make.
fn parse_file(name: &str, bytes: &[u8]) -> Request {
    let mut req = file_request(name, sha256_hex(bytes)[..16].to_string());
    let f = match ApprovalFile::parse(bytes) {
        Ok(f) => f,
        Err(why) => {
            req.defect = Some(format!(
                "approval file {name} ignored: {why} (see README, \"Approval files\")"
            ));
            return req;
        }
    };
    req.action = Some(f.action);
    req.version = f.version;
    req.commit = f.commit.clone();
    req.stage = f.rollback_stage();
    req.approver = f.approver.trim().to_string();
    req.note = f.reason.clone().unwrap_or_default();
    req.forced = f.force;
    if f.via.as_deref() == Some("cli") {
        req.method = Method::Cli;
    }
    match time::OffsetDateTime::parse(&f.created, &time::format_description::well_known::Rfc3339) {
        Ok(t) => req.given_ts = t.unix_timestamp() as f64,
        Err(_) => {
            req.defect = Some(format!(
                "approval file {name} ignored: created = {:?} is not an RFC 3339 time",
                f.created
            ));
            return req;
        }
    }
    req.defect = f.defect(name);
    req
}

/// Reads approval requests from the approvals folder.
pub fn read_files(dir: &Path, cache: &mut FileCache) -> Vec<Request> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        cache.0.clear();
        return out;
    };
    let mut present = HashSet::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() || !meta.is_file() {
            let mut req = file_request(&name, "link".into());
            req.defect = Some(format!(
                "approval file {name} ignored: it is a symlink or not a regular file; write the file itself into the approvals folder"
            ));
            out.push(req);
            continue;
        }
        present.insert(name.clone());
        let stamp = (meta.len(), meta.modified().ok());
        if let Some((len, modified, cached)) = cache.0.get(&name) {
            if (*len, *modified) == stamp {
                out.push(cached.clone());
                continue;
            }
        }
        if meta.len() > MAX_FILE {
            let mut req = file_request(&name, format!("size{}", meta.len()));
            req.defect = Some(format!(
                "approval file {name} ignored: larger than {MAX_FILE} bytes"
            ));
            out.push(req);
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let req = parse_file(&name, &bytes);
        cache.0.insert(name, (stamp.0, stamp.1, req.clone()));
        out.push(req);
    }
    cache.0.retain(|name, _| present.contains(name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_again_only_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("approve-v1.toml");
        let text = "action = \"approve\"\nversion = 1\ncommit = \"abc\"\napprover = \"a@b.c\"\ncreated = \"2026-01-01T00:00:00Z\"\n";
        std::fs::write(&path, text).unwrap();
        let mut cache = FileCache::default();
        let first = read_files(dir.path(), &mut cache);
        assert_eq!(first.len(), 1);
        assert!(first[0].defect.is_none(), "{:?}", first[0].defect);

        // Same size and modification time: the cached reading is used (the file is not read).
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, text.replace("a@b.c", "x@y.z")).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(read_files(dir.path(), &mut cache)[0].approver, "a@b.c");

        // A real change (size or time) is read again and is a new source.
        std::fs::write(&path, text.replace("a@b.c", "lead@bank.example")).unwrap();
        let again = read_files(dir.path(), &mut cache);
        assert_eq!(again[0].approver, "lead@bank.example");
        assert_ne!(again[0].source, first[0].source);

        // Removed files leave the cache.
        std::fs::remove_file(&path).unwrap();
        assert!(read_files(dir.path(), &mut cache).is_empty());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_bad_action_is_named_before_any_missing_field() {
        let r = parse_file(
            "x.toml",
            b"action = \"aprove\"\nversion = 1\ncommit = \"abc\"\ncreated = \"2026-01-01T00:00:00Z\"\n",
        );
        let why = r.defect.unwrap();
        assert!(why.contains("unknown action \"aprove\""), "{why}");
        assert!(!why.contains("approver"), "{why}");
    }

    #[test]
    fn the_force_trailer_is_read_and_kept_out_of_the_note() {
        let tag = ApprovalTag {
            name: "reject/v1".into(),
            action: Action::Reject,
            version: Some(1),
            object: "0".repeat(40),
            annotated: true,
            target: Some("1".repeat(40)),
            tagger_email: Some("risk@bank.example".into()),
            tagger_name: Some("Risk".into()),
            tagged_ts: Some(1),
            message: "withdraw\n\nForce: true".into(),
            raw: Vec::new(),
        };
        let r = from_tag(&tag);
        assert!(r.forced);
        assert_eq!(r.note, "withdraw");
        assert_eq!(r.method, Method::Tag);
    }
}
