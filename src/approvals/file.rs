//! The approval-file format: TOML files in the approvals folder, as `rcfops approve|promote|
//! reject|rollback --file` writes them and as a person may write them by hand.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::{Action, Stage};

/// An approval file, as stored in the approvals folder (TOML).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFile {
    pub action: Action,
    /// The version (not used by `rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The version's source commit (required with `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The stage a `rollback` names. Text, so that a wrong stage is refused with a sentence.
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

/// What a file lists after `action`.
const ACTIONS: &str = "approve, promote, reject or rollback";

/// Largest approval file read.
pub const MAX_FILE: u64 = 64 * 1024;

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
            None => return Err(format!("missing field `action` ({ACTIONS})")),
            Some(toml::Value::String(a)) if a.parse::<Action>().is_err() => {
                return Err(format!("unknown action {a:?} ({ACTIONS})"))
            }
            // A string that names an action, or not a string: the field's own error says so.
            Some(_) => {}
        }
        toml::from_str::<ApprovalFile>(text).map_err(|e| e.message().trim().to_string())
    }

    /// The problem with a parsed file's fields, if any, for the file `name`.
    pub fn defect(&self, name: &str) -> Option<String> {
        match self.action {
            Action::Approve | Action::Promote if self.force => Some(format!(
                "approval file {name} ignored: `force` applies to reject and rollback only"
            )),
            Action::Approve | Action::Promote | Action::Reject
                if self.version.is_none() || self.commit.is_none() =>
            {
                Some(format!(
                    "approval file {name} ignored: {} needs `version` and `commit`",
                    self.action
                ))
            }
            Action::Rollback if self.rollback_stage().is_none() => Some(format!(
                "approval file {name} ignored: rollback needs stage = \"staging\" or \"production\""
            )),
            _ => None,
        }
    }

    /// The stage a rollback names, when it names one.
    pub fn rollback_stage(&self) -> Option<Stage> {
        self.stage.as_deref().and_then(|s| s.parse().ok())
    }
}

/// Writes an approval file atomically; returns its path.
pub fn write_file(dir: &Path, file: &ApprovalFile) -> std::io::Result<PathBuf> {
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
