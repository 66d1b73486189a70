//! Gates: turning approval tags and approval files into accepted or refused decisions.
//!
//! Owns the approval rules of the contract: an approval names a known version, points at that
//! version's source commit, comes from an allowed approver, arrives in order (approve only a
//! pending version; promote only after the staging tests passed, and given after they
//! passed), and is an annotated tag or a well-formed file. Each tag object or file (by
//! content digest) is decided exactly once and the decision is stored, so a refusal belongs to
//! that object: a corrected tag or file is a new object and is judged afresh.
//!
//! Also owns the approval-file format written by `rcfops approve|promote|reject|rollback --file`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::artifacts::sha256_hex;
use crate::config::Config;
use crate::registry::{Decision, Registry, VersionRow, APPROVED, PENDING, REJECTED};
use crate::repo::{ApprovalTag, ModelRepo};
use crate::targets::{stages_left_empty, Move, Targets};

/// An approval file, as stored in the approvals folder (TOML).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFile {
    /// `approve`, `promote`, `reject` or `rollback`.
    pub action: String,
    /// The version (not used by `rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The version's source commit (required with `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `staging` or `production` (`rollback` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Approver e-mail.
    pub approver: String,
    /// When the approval was given (RFC 3339).
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `"cli"` when written by `rcfops` (recorded as the audit's "how").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Accept a reject or rollback that leaves a stage without a model.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// The actions an approval file may name.
pub const FILE_ACTIONS: [&str; 4] = ["approve", "promote", "reject", "rollback"];

/// Trailer of a tag message that asks for a reject that leaves a stage without a model.
pub const FORCE_TRAILER: &str = "Force: true";

/// How far in the future an approval may be stamped (clock skew between machines).
pub const MAX_CLOCK_SKEW_S: f64 = 120.0;

/// Trailer `rcfops approve|promote|reject` adds to the tags it creates, so the audit can tell a
/// CLI approval from a hand-made tag.
pub const CLI_TRAILER: &str = "Approved-with: rcfops-cli";

impl ApprovalFile {
    /// Parses an approval file's bytes; the error says what is wrong in words.
    pub fn parse(bytes: &[u8]) -> Result<ApprovalFile, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not valid UTF-8".to_string())?;
        if text.trim().is_empty() {
            return Err("the file is empty".into());
        }
        // The action says what the rest must be, so it is checked first.
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
        match table.get("action") {
            None => {
                return Err("missing field `action` (approve, promote, reject or rollback)".into())
            }
            Some(toml::Value::String(a)) if FILE_ACTIONS.contains(&a.as_str()) => {}
            Some(toml::Value::String(a)) => {
                return Err(format!(
                    "unknown action {a:?} (approve, promote, reject or rollback)"
                ))
            }
            // Not a string: the field's type error below says so.
            Some(_) => {}
        }
        toml::from_str::<ApprovalFile>(text).map_err(|e| e.message().trim().to_string())
    }
}

/// One approval request from any source, before judgement.
#[derive(Debug, Clone)]
pub struct Request {
    pub source: String,
    pub label: String,
    pub action: String,
    pub version: Option<i64>,
    pub stage: Option<String>,
    pub commit: Option<String>,
    pub approver: String,
    pub method: String,
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

/// Largest approval file read.
const MAX_FILE: u64 = 64 * 1024;

fn from_tag(t: &ApprovalTag) -> Request {
    let defect = if !t.annotated {
        Some(format!(
            "lightweight tag {} ignored: approval tags must be annotated (git tag -a {} -m \"...\") so they carry the approver and the time",
            t.name, t.name
        ))
    } else if t.version.is_none() {
        Some(format!(
            "tag {} ignored: the name must be {}/vN with N a version number, e.g. {}/v1",
            t.name,
            t.action.as_str(),
            t.action.as_str()
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
    };
    Request {
        source: format!("tag:{}@{}", t.name, t.object),
        label: format!("tag {}", t.name),
        action: t.action.as_str().to_string(),
        version: t.version,
        stage: None,
        commit: t.target.clone(),
        approver: t.tagger_email.clone().unwrap_or_default(),
        method: if t.message.lines().any(|l| l.trim() == CLI_TRAILER) {
            "cli".into()
        } else {
            "tag".into()
        },
        given_ts: t.tagged_ts.unwrap_or(0) as f64,
        defect,
        raw: t.raw.clone(),
        note: t
            .message
            .split("-----BEGIN SSH SIGNATURE-----")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| l.trim() != CLI_TRAILER && !is_force_trailer(l))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string(),
        forced: t
            .message
            .split("-----BEGIN SSH SIGNATURE-----")
            .next()
            .unwrap_or("")
            .lines()
            .any(is_force_trailer),
    }
}

fn is_force_trailer(line: &str) -> bool {
    line.trim().eq_ignore_ascii_case(FORCE_TRAILER)
}

/// Approval files already read, by name, with the size and modification time they had, so a
/// pass only reads files that are new or changed.
#[derive(Debug, Default)]
pub struct FileCache(HashMap<String, (u64, Option<SystemTime>, Request)>);

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
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(_) => continue,
        };
        let mut req = Request {
            source: String::new(),
            label: format!("approval file {name}"),
            action: "unknown".into(),
            version: None,
            stage: None,
            commit: None,
            approver: String::new(),
            method: "file".into(),
            given_ts: 0.0,
            defect: None,
            raw: Vec::new(),
            note: String::new(),
            forced: false,
        };
        if meta.file_type().is_symlink() || !meta.is_file() {
            req.source = format!("file:{name}@link");
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
            req.source = format!("file:{name}@size{}", meta.len());
            req.defect = Some(format!(
                "approval file {name} ignored: larger than {MAX_FILE} bytes"
            ));
            out.push(req);
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        req.source = format!("file:{name}@{}", &sha256_hex(&bytes)[..16]);
        let parsed = ApprovalFile::parse(&bytes);
        match parsed {
            Err(why) => {
                req.defect = Some(format!(
                    "approval file {name} ignored: {why} (see README, \"Approval files\")"
                ));
            }
            Ok(f) => {
                req.action = f.action.clone();
                req.version = f.version;
                req.commit = f.commit.clone();
                req.stage = f.stage.clone();
                req.approver = f.approver.trim().to_string();
                req.note = f.reason.clone().unwrap_or_default();
                req.forced = f.force;
                if f.via.as_deref() == Some("cli") {
                    req.method = "cli".into();
                }
                match time::OffsetDateTime::parse(
                    &f.created,
                    &time::format_description::well_known::Rfc3339,
                ) {
                    Ok(t) => req.given_ts = t.unix_timestamp() as f64,
                    Err(_) => {
                        req.defect = Some(format!(
                            "approval file {name} ignored: created = {:?} is not an RFC 3339 time",
                            f.created
                        ))
                    }
                }
                if req.defect.is_none() {
                    req.defect = match f.action.as_str() {
                        "approve" | "promote" | "reject" if f.version.is_none() || f.commit.is_none() => Some(format!(
                            "approval file {name} ignored: {} needs `version` and `commit`",
                            f.action
                        )),
                        "approve" | "promote" if f.force => Some(format!(
                            "approval file {name} ignored: `force` applies to reject and rollback only"
                        )),
                        "approve" | "promote" | "reject" => None,
                        "rollback" => match f.stage.as_deref() {
                            Some("staging") | Some("production") => None,
                            _ => Some(format!(
                                "approval file {name} ignored: rollback needs stage = \"staging\" or \"production\""
                            )),
                        },
                        other => Some(format!(
                            "approval file {name} ignored: unknown action {other:?} (approve, promote, reject or rollback)"
                        )),
                    };
                }
            }
        }
        cache.0.insert(name, (stamp.0, stamp.1, req.clone()));
        out.push(req);
    }
    cache.0.retain(|name, _| present.contains(name));
    out
}

/// Collects every request not decided yet, oldest first.
pub fn pending_requests(
    repo: &ModelRepo,
    cfg: &Config,
    reg: &Registry,
    files: &mut FileCache,
) -> Result<Vec<Request>, String> {
    let mut reqs: Vec<Request> = repo
        .approval_tags()
        .map_err(|e| format!("cannot list tags: {e}"))?
        .iter()
        .map(from_tag)
        .collect();
    reqs.extend(read_files(&cfg.approvals.dir, files));
    let seen = reg.approval_sources().map_err(|e| e.to_string())?;
    let mut fresh: Vec<Request> = reqs
        .into_iter()
        .filter(|r| !seen.contains(&r.source))
        .collect();
    fresh.sort_by(|a, b| {
        a.given_ts
            .total_cmp(&b.given_ts)
            .then_with(|| a.source.cmp(&b.source))
    });
    Ok(fresh)
}

/// Judges one request against the registry as it is now.
pub fn judge(req: &Request, cfg: &Config, reg: &Registry) -> Result<Decision, String> {
    let mut d = Decision {
        source: req.source.clone(),
        action: req.action.clone(),
        version: req.version,
        stage: req.stage.clone(),
        approver: if req.approver.is_empty() {
            "unknown".into()
        } else {
            req.approver.clone()
        },
        method: req.method.clone(),
        given_ts: req.given_ts,
        note: req.note.clone(),
        forced: req.forced,
        outcome: Ok(()),
    };
    d.outcome = verdict(req, cfg, reg, &mut d)?;
    Ok(d)
}

fn verdict(
    req: &Request,
    cfg: &Config,
    reg: &Registry,
    d: &mut Decision,
) -> Result<Result<(), String>, String> {
    let e = |s: String| Ok(Err(s));
    if let Some(defect) = &req.defect {
        return e(defect.clone());
    }
    if !cfg.may(&req.action, req.stage.as_deref(), &req.approver) {
        let list = match (req.action.as_str(), req.stage.as_deref()) {
            ("approve", _) if !cfg.approvals.staging_approvers.is_empty() => "staging_approvers",
            ("promote", _) | ("rollback", Some("production"))
                if !cfg.approvals.production_approvers.is_empty() =>
            {
                "production_approvers"
            }
            _ => "approvers",
        };
        return e(format!(
            "{} refused: {} is not in [approvals] {list} in the config",
            req.label,
            if req.approver.is_empty() {
                "an approver without e-mail"
            } else {
                &req.approver
            }
        ));
    }
    if cfg.approvals.require_signed && (req.action == "approve" || req.action == "promote") {
        if !req.source.starts_with("tag:") {
            return e(format!(
                "{} refused: require_signed is on, so {} needs a signed tag (git tag -s {}/vN); approval files cannot be signed",
                req.label, req.action, req.action
            ));
        }
        let path = cfg
            .approvals
            .allowed_signers
            .as_deref()
            .expect("checked by config");
        let signers = crate::signing::AllowedSigners::load(path)?;
        if let Err(why) = signers.verify_tag(&req.raw, &req.approver) {
            return e(format!(
                "{} refused: require_signed is on and {why}",
                req.label
            ));
        }
    }
    if req.given_ts > crate::registry::now_ts() + MAX_CLOCK_SKEW_S {
        return e(format!(
            "{} refused: it is stamped {}, in the future (more than {MAX_CLOCK_SKEW_S:.0} s ahead of this machine's clock); check the clock of the machine that made it and give the approval again",
            req.label,
            crate::registry::format_ts(req.given_ts)
        ));
    }
    if req.action == "rollback" {
        let stage = req.stage.as_deref().unwrap_or("");
        let facts = reg.target_facts().map_err(|e| e.to_string())?;
        let targets = facts.targets();
        return match stage {
            "production" => {
                let stack = &targets.production_stack;
                if stack.is_empty() {
                    e(format!(
                        "{} refused: production has no previous version to roll back to: it serves no model",
                        req.label
                    ))
                } else if stack.len() < 2 && !req.forced {
                    e(format!(
                        "{} refused: production has no previous version to roll back to, so it would be left without a model; nothing changed. {}",
                        req.label,
                        force_hint(req)
                    ))
                } else {
                    d.version = stack.last().copied();
                    Ok(Ok(()))
                }
            }
            _ => match targets.staging {
                None => e(format!(
                    "{} refused: nothing is deployed to staging",
                    req.label
                )),
                Some(n) => {
                    // Rolling staging back rejects the version live there.
                    let m = Move {
                        action: "reject".into(),
                        version: Some(n),
                        stage: None,
                    };
                    let empty = stages_left_empty(&facts, &m);
                    if !empty.is_empty() && !req.forced {
                        let also = if targets.production() == Some(n) {
                            format!(" It rejects v{n}, which production serves too.")
                        } else {
                            String::new()
                        };
                        return e(format!(
                            "{} refused: it would leave {} without a model;{also} nothing changed. {}",
                            req.label,
                            empty.join(" and "),
                            force_hint(req)
                        ));
                    }
                    d.action = "reject".into();
                    d.version = Some(n);
                    Ok(Ok(()))
                }
            },
        };
    }
    let n = req.version.expect("checked by the readers");
    let Some(v) = reg.version(n).map_err(|e| e.to_string())? else {
        return e(format!("{} refused: there is no version v{n}", req.label));
    };
    if req.commit.as_deref() != Some(v.commit.as_str()) {
        return e(format!(
            "{} refused: it points at {} but v{n} was built from commit {}",
            req.label,
            short(req.commit.as_deref().unwrap_or("nothing")),
            short(&v.commit)
        ));
    }
    match req.action.as_str() {
        "approve" => approve_rule(req, &v),
        "promote" => promote_rule(req, &v, reg, cfg),
        "reject" if v.approval == REJECTED => {
            e(format!("{} refused: v{n} is already rejected", req.label))
        }
        "reject" => {
            let facts = reg.target_facts().map_err(|e| e.to_string())?;
            let m = Move {
                action: "reject".into(),
                version: Some(n),
                stage: None,
            };
            let empty = stages_left_empty(&facts, &m);
            if !empty.is_empty() && !req.forced {
                return e(format!(
                    "{} refused: v{n} is the only version left for {stages}, so rejecting it would leave {stages} without a model; nothing changed. {}",
                    req.label,
                    force_hint(req),
                    stages = empty.join(" and "),
                ));
            }
            Ok(Ok(()))
        }
        other => e(format!("{} refused: unknown action {other}", req.label)),
    }
}

fn approve_rule(req: &Request, v: &VersionRow) -> Result<Result<(), String>, String> {
    let n = v.version;
    Ok(match v.approval.as_str() {
        REJECTED => Err(format!(
            "{} refused: v{n} was rejected; a rejected version cannot be approved",
            req.label
        )),
        APPROVED => Err(format!("{} refused: v{n} is already approved", req.label)),
        PENDING if req.given_ts < v.registered_ts.floor() => Err(format!(
            "{} refused: it was given before v{n} was registered",
            req.label
        )),
        _ => Ok(()),
    })
}

fn promote_rule(
    req: &Request,
    v: &VersionRow,
    reg: &Registry,
    cfg: &Config,
) -> Result<Result<(), String>, String> {
    let n = v.version;
    if cfg.approvals.separation_of_duties
        && !v.author_email.is_empty()
        && v.author_email.eq_ignore_ascii_case(req.approver.trim())
    {
        return Ok(Err(format!(
            "{} refused: separation of duties: {} authored v{n}'s source commit and may not promote it to production; another approver must (or set [approvals] separation_of_duties = false)",
            req.label, req.approver
        )));
    }
    if v.approval == REJECTED {
        return Ok(Err(format!("{} refused: v{n} was rejected", req.label)));
    }
    if v.approval != APPROVED {
        return Ok(Err(format!(
            "{} refused: v{n} is {}; approve it (approve/v{n}) and let it pass staging first",
            req.label, v.approval
        )));
    }
    match (v.staging_result.as_deref(), v.staging_ts) {
        // Tag times have one-second resolution: a promotion stamped in the very second the
        // tests passed cannot be shown to come after them, so it is refused too.
        (Some("Passed"), Some(ts)) if req.given_ts > ts.floor() => {}
        (Some("Passed"), Some(ts)) if req.given_ts == ts.floor() => {
            return Ok(Err(format!(
                "{} refused: it is stamped in the same second v{n} passed its staging tests, so it cannot be shown to come after them; {} a second later",
                req.label,
                give_again(req)
            )))
        }
        (Some("Passed"), _) => {
            return Ok(Err(format!(
                "{} refused: it was given before v{n} passed its staging tests; {}",
                req.label,
                give_again(req)
            )))
        }
        (Some("Failed"), _) => {
            return Ok(Err(format!("{} refused: v{n} failed its staging tests", req.label)));
        }
        _ => {
            return Ok(Err(format!(
                "{} refused: v{n} has not passed its staging tests yet; promote after staging passes",
                req.label
            )))
        }
    }
    if reg.production_target().map_err(|e| e.to_string())? == Some(n) {
        return Ok(Err(format!(
            "{} refused: v{n} is already in production",
            req.label
        )));
    }
    Ok(Ok(()))
}

/// How to ask again for a decision that leaves a stage without a model.
fn force_hint(req: &Request) -> String {
    let how = if req.source.starts_with("tag:") {
        format!(
            "`rcfops {} --force`, or a new tag whose message has the line `{FORCE_TRAILER}`",
            match (req.action.as_str(), req.version) {
                (a, Some(n)) => format!("{a} {n}"),
                (a, None) => a.to_string(),
            }
        )
    } else if req.action == "rollback" {
        format!(
            "`rcfops rollback {} --force`, or a new approval file with `force = true`",
            req.stage.as_deref().unwrap_or("STAGE")
        )
    } else {
        "a new approval file with `force = true`".to_string()
    };
    format!("To do it anyway, ask again with {how}")
}

/// "a new promote tag" or "a new approval file", after the source at hand.
fn give_again(req: &Request) -> String {
    if req.source.starts_with("tag:") {
        format!("create a new {} tag", req.action)
    } else {
        "write a new approval file".to_string()
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

/// Decides every pending request in order; returns how many were accepted.
pub fn process(
    repo: &ModelRepo,
    cfg: &Config,
    reg: &Registry,
    files: &mut FileCache,
) -> Result<usize, String> {
    let mut accepted = 0;
    for req in pending_requests(repo, cfg, reg, files)? {
        let d = judge(&req, cfg, reg)?;
        let before = reg.targets().map_err(|e| e.to_string())?;
        reg.record_decision(&d).map_err(|e| e.to_string())?;
        match &d.outcome {
            Ok(()) => {
                accepted += 1;
                let after = reg.targets().map_err(|e| e.to_string())?;
                tracing::info!(
                    version = d.version,
                    approver = %d.approver,
                    how = %d.method,
                    forced = d.forced,
                    "{} accepted: {} v{} by {}{}{}",
                    req.label,
                    d.action,
                    d.version.unwrap_or(0),
                    d.approver,
                    if d.forced { " (forced)" } else { "" },
                    describe_moves(&before, &after)
                );
            }
            Err(why) => tracing::warn!(approver = %d.approver, how = %d.method, "{why}"),
        }
    }
    Ok(accepted)
}

/// "; staging v2 → v1, production v2 → none" for the stages a decision moves.
fn describe_moves(before: &Targets, after: &Targets) -> String {
    let show = |v: Option<i64>| {
        v.map(|n| format!("v{n}"))
            .unwrap_or_else(|| "no model".into())
    };
    let moved: Vec<String> = ["staging", "production"]
        .into_iter()
        .filter(|s| before.get(s) != after.get(s))
        .map(|s| format!("{s} {} → {}", show(before.get(s)), show(after.get(s))))
        .collect();
    if moved.is_empty() {
        String::new()
    } else {
        format!("; {}", moved.join(", "))
    }
}

/// Writes an approval file atomically; returns its path.
pub fn write_file(dir: &Path, file: &ApprovalFile) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let name = match file.version {
        Some(n) => format!("{}-v{n}-{stamp}.toml", file.action),
        None => format!(
            "{}-{}-{stamp}.toml",
            file.action,
            file.stage.as_deref().unwrap_or("stage")
        ),
    };
    let text = toml::to_string(file).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
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
        assert!(cache.0.is_empty());
    }
}
