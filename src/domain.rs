//! The flow's vocabulary as types: stages, approval actions and statuses, run statuses,
//! staging-test results, decision outcomes, how an approval was given, where it came from, and
//! the notification vocabulary (event types, delivery states, sink kinds).
//!
//! Each type has one text form, the one the registry stores, the JSON shows and the user types
//! (`Display`/`FromStr`, serde, and rusqlite `ToSql`/`FromSql` all use it), so registries
//! written by earlier releases open unchanged. No other module spells these strings.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// The one text form of a time: RFC 3339, UTC, whole seconds, of a unix timestamp.
pub fn format_ts(ts: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ts.floor() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A text value that names none of a type's variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what} (expected one of: {expected})")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// Defines a fieldless enum with one text form per variant and every conversion above.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        /// Compares with the text form, e.g. `status == "Passed"`.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(UnknownName {
                        what: $what,
                        value: s.to_string(),
                        expected: concat!($($s, " "),+).trim_ascii_end(),
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                v.as_str()?.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

text_enum!(
    /// A deployment stage.
    Stage, "stage" { Staging = "staging", Production = "production" }
);

impl Stage {
    /// SageMaker's endpoint name for this stage of model package group `group`.
    pub fn endpoint_name(self, group: &str) -> String {
        match self {
            Stage::Staging => format!("{group}-staging"),
            Stage::Production => format!("{group}-prod"),
        }
    }
}

text_enum!(
    /// What an approval asks for.
    Action, "approval action" {
        Approve = "approve",
        Promote = "promote",
        Reject = "reject",
        Rollback = "rollback",
    }
);

text_enum!(
    /// SageMaker's `ModelApprovalStatus`.
    ApprovalStatus, "approval status" {
        Pending = "PendingManualApproval",
        Approved = "Approved",
        Rejected = "Rejected",
    }
);

text_enum!(
    /// A pipeline run's status.
    RunStatus, "run status" {
        Running = "Running",
        Succeeded = "Succeeded",
        Failed = "Failed",
        Skipped = "Skipped",
    }
);

text_enum!(
    /// A pipeline step's status.
    StepStatus, "step status" {
        Running = "Running",
        Succeeded = "Succeeded",
        Failed = "Failed",
        Interrupted = "Interrupted",
    }
);

text_enum!(
    /// The result of a version's staging tests.
    StagingResult, "staging-test result" { Passed = "Passed", Failed = "Failed" }
);

text_enum!(
    /// What the agent decided about one approval source.
    Outcome, "decision outcome" { Accepted = "accepted", Refused = "refused" }
);

text_enum!(
    /// How an approval was given (the audit's "how").
    Method, "approval method" { Tag = "tag", File = "file", Cli = "cli" }
);

text_enum!(
    /// Model Monitor's judgement of a stage's live traffic (ordered: OK < WARN < ALERT).
    Verdict, "monitor verdict" { Ok = "OK", Warn = "WARN", Alert = "ALERT" }
);

text_enum!(
    /// A notification: what happened that someone may need to hear about (`events` in a
    /// `[[notify.sinks]]` table, `data.event` in the CloudEvent).
    EventType, "notification event type" {
        VersionPending = "version.pending",
        VersionApproved = "version.approved",
        VersionRejected = "version.rejected",
        StageDeployed = "stage.deployed",
        StageRolledBack = "stage.rolled_back",
        StageDeployFailed = "stage.deploy_failed",
        StagingTestsPassed = "staging.tests_passed",
        StagingTestsFailed = "staging.tests_failed",
        RunFailed = "run.failed",
        ApprovalRefused = "approval.refused",
        MonitorDrift = "monitor.drift",
        /// Sent by `rcfops notify test`; never stored.
        Test = "notify.test",
    }
);

text_enum!(
    /// Where one event stands with one sink.
    DeliveryState, "delivery state" {
        Pending = "pending",
        Delivered = "delivered",
        Dead = "dead",
    }
);

text_enum!(
    /// A notification sink's kind (`kind` in `[[notify.sinks]]`).
    SinkKind, "sink kind" { Webhook = "webhook", Slack = "slack", Command = "command" }
);

/// Where an approval came from: a tag object or an approval file's content. Each source is
/// decided exactly once, so its text form is the registry's unique key
/// (`tag:<name>@<object id>`, `file:<name>@<digest>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApprovalSource {
    Tag {
        name: String,
        object: String,
    },
    /// `digest` is the content digest prefix, or a marker for a file that was not read
    /// (`link`, `size<N>`).
    File {
        name: String,
        digest: String,
    },
}

impl ApprovalSource {
    pub fn is_tag(&self) -> bool {
        matches!(self, ApprovalSource::Tag { .. })
    }

    /// The tag or file name.
    pub fn name(&self) -> &str {
        match self {
            ApprovalSource::Tag { name, .. } | ApprovalSource::File { name, .. } => name,
        }
    }
}

impl fmt::Display for ApprovalSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApprovalSource::Tag { name, object } => write!(f, "tag:{name}@{object}"),
            ApprovalSource::File { name, digest } => write!(f, "file:{name}@{digest}"),
        }
    }
}

impl FromStr for ApprovalSource {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let bad = || UnknownName {
            what: "approval source",
            value: s.to_string(),
            expected: "tag:NAME@OBJECT file:NAME@DIGEST",
        };
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let (name, id) = rest.rsplit_once('@').ok_or_else(bad)?;
        let (name, id) = (name.to_string(), id.to_string());
        match kind {
            "tag" => Ok(ApprovalSource::Tag { name, object: id }),
            "file" => Ok(ApprovalSource::File { name, digest: id }),
            _ => Err(bad()),
        }
    }
}

impl serde::Serialize for ApprovalSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl ToSql for ApprovalSource {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for ApprovalSource {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        v.as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(all: &[T])
    where
        T: Copy + fmt::Display + FromStr + PartialEq + fmt::Debug + ToSql + FromSql,
        <T as FromStr>::Err: fmt::Debug,
    {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for v in all {
            assert_eq!(v.to_string().parse::<T>().unwrap(), *v);
            let back: T = conn.query_row("SELECT ?1", [v], |r| r.get(0)).unwrap();
            assert_eq!(back, *v);
        }
    }

    #[test]
    fn every_value_round_trips_through_text_and_sqlite() {
        round_trip(Stage::ALL);
        round_trip(Action::ALL);
        round_trip(ApprovalStatus::ALL);
        round_trip(RunStatus::ALL);
        round_trip(StepStatus::ALL);
        round_trip(StagingResult::ALL);
        round_trip(Outcome::ALL);
        round_trip(Method::ALL);
    }

    #[test]
    fn the_stored_text_is_the_contract() {
        // Registries written by earlier releases hold exactly these strings.
        assert_eq!(ApprovalStatus::Pending.to_string(), "PendingManualApproval");
        assert_eq!(
            serde_json::to_string(&Stage::Production).unwrap(),
            "\"production\""
        );
        assert_eq!(
            serde_json::from_str::<RunStatus>("\"Skipped\"").unwrap(),
            RunStatus::Skipped
        );
        assert_eq!(
            Stage::Production.endpoint_name("card-fraud"),
            "card-fraud-prod"
        );
    }

    #[test]
    fn unknown_text_is_named() {
        let e = "prod".parse::<Stage>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"prod\" is not a stage (expected one of: staging production)"
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let r: rusqlite::Result<Stage> = conn.query_row("SELECT 'prod'", [], |r| r.get(0));
        assert!(r.is_err());
    }

    #[test]
    fn sources_round_trip() {
        for s in [
            "tag:approve/v1@0123abcd",
            "file:approve-v1.toml@deadbeef",
            "file:x.toml@size70000",
        ] {
            assert_eq!(s.parse::<ApprovalSource>().unwrap().to_string(), s);
        }
        assert!("approve/v1".parse::<ApprovalSource>().is_err());
    }
}
