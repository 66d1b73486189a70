//! Named failure points for crash testing.
//!
//! `RCFOPS_FAILPOINTS="name=action;name2=action"` (read once, at the first hit) makes the
//! process fail at those points: `abort` kills it on the spot (SIGABRT: no destructors, no
//! flushing — what kill -9 does to the registry and the files), `panic` unwinds. Without the
//! variable every point is a single atomic load. The points, in flow order:
//!
//! | name | where |
//! |---|---|
//! | `run.after-load` | a run has read `pipeline.toml` and the data from the commit |
//! | `run.mid-train` | the forest is trained, evaluation not yet done |
//! | `run.after-artifact` | the artifact file is written, the version row is not |
//! | `run.after-register` | the version row is committed, the run's end not yet logged |
//! | `deploy.after-swap` | a stage serves the new model, the deployment is not recorded |
//! | `staging.before-record` | staging tests ran, their result is not recorded |
//! | `promote.before-deploy` | a promotion is accepted, production not yet swapped |
//! | `notify.before-send` | an event is committed to the outbox, not yet sent to a sink |
//! | `notify.after-send` | a sink answered 2xx, the delivery is not yet recorded |
//! | `envrepo.before-commit` | a Kubernetes stage's folder is rendered, not yet committed |
//! | `envrepo.after-ref` | the environment repo's branch points at the new commit, the work tree is not yet checked out |

use std::collections::HashMap;
use std::sync::OnceLock;

/// All failure points, for tests and docs.
pub const POINTS: &[&str] = &[
    "run.after-load",
    "run.mid-train",
    "run.after-artifact",
    "run.after-register",
    "deploy.after-swap",
    "staging.before-record",
    "promote.before-deploy",
    "notify.before-send",
    "notify.after-send",
];

/// The failure points of a Kubernetes deploy target (reached only with one configured).
pub const KUBERNETES_POINTS: &[&str] = &["envrepo.before-commit", "envrepo.after-ref"];

fn table() -> &'static HashMap<String, String> {
    static T: OnceLock<HashMap<String, String>> = OnceLock::new();
    T.get_or_init(|| {
        std::env::var("RCFOPS_FAILPOINTS")
            .unwrap_or_default()
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    })
}

/// Fails here if the point is configured.
pub fn hit(name: &str) {
    let t = table();
    if t.is_empty() {
        return;
    }
    match t.get(name).map(String::as_str) {
        Some("abort") => {
            eprintln!("failpoint {name}: abort");
            std::process::abort();
        }
        Some("panic") => panic!("failpoint {name}"),
        _ => {}
    }
}
