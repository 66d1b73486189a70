//! The rendered Kubernetes manifests: byte-stable; every object valid against the strict JSON
//! schemas of Kubernetes v1.33 (vendored in tests/k8s-schemas, validated offline); the
//! semantics a platform team checks; and a kubelet played by the test: the rendered
//! Deployment's initContainer and container run as local processes, two replicas answer
//! identically, and one stopped under load drops no request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcfops::domain::Stage;
use rcfops::k8s::{render, render_files, PodAuth, Workload};
use rcfops::model::Model;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rcfops");

mod common;

fn workload(artifact_url: &str, sha256: &str, auth: Option<PodAuth>) -> Workload {
    Workload {
        project: "card-fraud".into(),
        stage: Stage::Production,
        version: 7,
        sha256: sha256.into(),
        approved_by: "lead@bank.example".into(),
        image: "registry.bank.example/rcfops:0.1.0".into(),
        namespace: "fraud-scoring".into(),
        artifact_url: artifact_url.into(),
        min_replicas: 2,
        max_replicas: 6,
        cpu_request: "500m".into(),
        memory_request: "256Mi".into(),
        cpu_limit: "2".into(),
        memory_limit: "512Mi".into(),
        auth,
    }
}

struct Schemas(HashMap<String, Value>);

impl jsonschema::Retrieve for Schemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .get(uri.as_str())
            .cloned()
            .ok_or_else(|| format!("schema {uri} is not vendored (offline)").into())
    }
}

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/k8s-schemas/v1.33")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// A validator for `kind` against the vendored strict schema.
fn validator(kind: &str) -> jsonschema::Validator {
    let file = match kind {
        "Deployment" => "deployment-apps-v1.json",
        "Service" => "service-v1.json",
        "HorizontalPodAutoscaler" => "horizontalpodautoscaler-autoscaling-v2.json",
        "PodDisruptionBudget" => "poddisruptionbudget-policy-v1.json",
        other => panic!("no schema for {other}"),
    };
    let defs = read_json(&schema_dir().join("_definitions.json"));
    let mut map = HashMap::new();
    map.insert(defs["$id"].as_str().unwrap().to_string(), defs.clone());
    let schema = read_json(&schema_dir().join(file));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_retriever(Schemas(map))
        .build(&schema)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn errors(object: &Value) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap();
    validator(kind)
        .iter_errors(object)
        .map(|e| format!("{kind} {}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn manifests_are_stable_strictly_valid_and_consistent() {
    let sha = "ab".repeat(32);
    for auth in [
        None,
        Some(PodAuth {
            secret: "card-fraud-sigv4".into(),
            region: "eu-west-1".into(),
            service: "sagemaker".into(),
        }),
    ] {
        let w = workload("https://artifacts.bank.example/sha256-ab.rcfm", &sha, auth);
        let files = render_files(&w);
        assert_eq!(files, render_files(&w), "byte-identical renders");
        let names: Vec<&str> = files.iter().map(|f| f.0).collect();
        assert_eq!(
            names,
            [
                "kustomization.yaml",
                "deployment.yaml",
                "service.yaml",
                "hpa.yaml",
                "pdb.yaml"
            ]
        );
        // The YAML reads back as exactly the objects rendered.
        let objects = render(&w);
        for (m, (file, text)) in objects.iter().zip(&files[1..]) {
            assert_eq!(m.file, *file);
            let back: Value = serde_yaml::from_str(text).unwrap();
            assert_eq!(back, m.object, "{file} round trip");
            let errs = errors(&m.object);
            assert!(errs.is_empty(), "{file}: {errs:#?}");
        }
        let kust: Value = serde_yaml::from_str(&files[0].1).unwrap();
        assert_eq!(kust["resources"].as_array().unwrap().len(), 4);

        let by_kind = |k: &str| {
            &objects
                .iter()
                .find(|m| m.object["kind"] == k)
                .unwrap()
                .object
        };
        let dep = by_kind("Deployment");
        let svc = by_kind("Service");
        let hpa = by_kind("HorizontalPodAutoscaler");
        let pdb = by_kind("PodDisruptionBudget");
        let tpl_labels = dep["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .unwrap();
        for sel in [
            dep["spec"]["selector"]["matchLabels"].as_object().unwrap(),
            svc["spec"]["selector"].as_object().unwrap(),
            pdb["spec"]["selector"]["matchLabels"].as_object().unwrap(),
        ] {
            for (k, v) in sel {
                assert_eq!(tpl_labels.get(k), Some(v), "selector {k} matches the pods");
            }
        }
        let c = &dep["spec"]["template"]["spec"]["containers"][0];
        let port = &c["ports"][0];
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], port["name"]);
        assert_eq!(port["containerPort"], 8080);
        assert_eq!(svc["spec"]["ports"][0]["port"], 80);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(
            hpa["spec"]["scaleTargetRef"]["name"],
            dep["metadata"]["name"]
        );
        assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
        assert!(
            dep["spec"].get("replicas").is_none(),
            "the HPA owns the replica count"
        );
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            assert_eq!(c[probe]["httpGet"]["path"], "/ping", "{probe}");
            assert_eq!(c[probe]["httpGet"]["port"], port["name"]);
        }
        assert_eq!(c["readinessProbe"]["timeoutSeconds"], 2);
        let ru = &dep["spec"]["strategy"]["rollingUpdate"];
        assert_eq!(
            (ru["maxUnavailable"].clone(), ru["maxSurge"].clone()),
            (0.into(), 1.into())
        );
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["runAsNonRoot"], true);
        let ann = &dep["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(ann["rcfops.dev/version"], "7");
        assert_eq!(ann["rcfops.dev/artifact-sha256"], sha.as_str());
        let init = &dep["spec"]["template"]["spec"]["initContainers"][0];
        assert_eq!(init["args"][0], "artifact");
        assert_eq!(init["volumeMounts"][0]["mountPath"], "/opt/ml/model");
        // The server's grace fits inside the pod's, after the preStop sleep.
        let grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap();
        let pre = c["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap();
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let server_grace: u64 = args[args
            .iter()
            .position(|a| *a == "--shutdown-grace-seconds")
            .unwrap()
            + 1]
        .parse()
        .unwrap();
        assert!(
            pre + server_grace < grace,
            "{pre} + {server_grace} < {grace}"
        );
    }
}

#[test]
fn a_broken_object_is_caught() {
    let w = workload("https://a.example/x.rcfm", &"cd".repeat(32), None);
    let objects = render(&w);
    let mut dep = objects[0].object.clone();
    dep["spec"]["replica"] = 3.into(); // a misspelt field
    assert!(
        errors(&dep).iter().any(|e| e.contains("replica")),
        "{:?}",
        errors(&dep)
    );
    let mut dep = objects[0].object.clone();
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080".into();
    assert!(!errors(&dep).is_empty());
    let mut svc = objects[1].object.clone();
    svc["spec"]["ports"][0]
        .as_object_mut()
        .unwrap()
        .remove("port");
    assert!(!errors(&svc).is_empty(), "a port without its number");
    let mut hpa = objects[2].object.clone();
    hpa["spec"]["minReplicas"] = "two".into();
    assert!(!errors(&hpa).is_empty());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A pod as the test's kubelet runs it: the emptyDir is a temp folder, and the pod's own
/// network namespace is a loopback port of its own.
struct Pod {
    child: Child,
    url: String,
    _empty_dir: tempfile::TempDir,
}

fn run_pod(dep: &Value) -> Pod {
    run_pod_on(dep, free_port())
}

fn run_pod_on(dep: &Value, port: u16) -> Pod {
    let spec = &dep["spec"]["template"]["spec"];
    let empty_dir = tempfile::tempdir().unwrap();
    let mount = empty_dir.path().to_str().unwrap().to_string();
    let subst = |a: String| {
        a.replace(rcfops::k8s::MODEL_DIR, &mount)
            .replace("0.0.0.0:8080", &format!("127.0.0.1:{port}"))
    };
    let exe = |c: &Value| -> Command {
        let cmd = strings(&c["command"]);
        assert_eq!(cmd, ["rcfops"], "the image's binary");
        let mut command = Command::new(BIN);
        command.args(strings(&c["args"]).into_iter().map(subst));
        for e in c["env"].as_array().into_iter().flatten() {
            command.env(e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
        }
        command.env("NO_PROXY", "127.0.0.1");
        command
    };
    for init in spec["initContainers"].as_array().unwrap() {
        let out = exe(init).output().unwrap();
        assert!(out.status.success(), "initContainer: {out:?}");
    }
    let container = &spec["containers"][0];
    let child = exe(container)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    // The readiness probe.
    let path = container["readinessProbe"]["httpGet"]["path"]
        .as_str()
        .unwrap();
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client
            .get(format!("{url}{path}"))
            .send()
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the pod never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    Pod {
        child,
        url,
        _empty_dir: empty_dir,
    }
}

#[test]
fn the_rendered_deployment_runs_two_replicas_and_drains_one_under_load() {
    let model = common::sample_model();
    let bytes = model.to_bytes();
    let sha = rcfops::artifacts::sha256_hex(&bytes);
    let name = format!("sha256-{sha}.rcfm");
    let store = common::http_file_server(bytes, None);
    let w = workload(&format!("{store}/{name}"), &sha, None);
    let files = render_files(&w);
    let dep: Value = serde_yaml::from_str(&files[1].1).unwrap();
    assert_eq!(dep["kind"], "Deployment");

    let pods = [run_pod(&dep), run_pod(&dep)];
    let records = [
        [120.5, 3.0, 0.2, 14.0, 1.0, 0.0, 2.5, 0.0],
        [9000.0, 1.0, 250.0, 2.0, 0.0, 1.0, 40.0, 1.0],
    ];
    let csv: String = records
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        })
        .collect();
    let flat: Vec<f64> = records.iter().flatten().copied().collect();
    let want = model.score_rows(&flat, 2);
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let score = |url: &str| -> (Vec<f64>, String) {
        let r = client
            .post(format!("{url}/endpoints/card-fraud-prod/invocations"))
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let v = r.headers()["x-rcfops-model-version"]
            .to_str()
            .unwrap()
            .to_string();
        let doc: Value = r.json().unwrap();
        let s = doc["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["score"].as_f64().unwrap())
            .collect();
        (s, v)
    };
    let (a, va) = score(&pods[0].url);
    let (b, vb) = score(&pods[1].url);
    assert_eq!(a, want, "the version's scores");
    assert_eq!(a, b, "replicas answer identically");
    assert_eq!((va.as_str(), vb.as_str()), ("7", "7"));

    // Load on both; then the first is taken out of the Service's endpoints, its preStop
    // sleep runs (shortened here), and it gets SIGTERM. No request may fail.
    let ready = Arc::new(Mutex::new(vec![pods[0].url.clone(), pods[1].url.clone()]));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for t in 0..4 {
        let (ready, stop, ok, failed, csv) = (
            ready.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            csv.clone(),
        );
        load.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                let url = {
                    let r = ready.lock().unwrap();
                    r[i % r.len()].clone()
                };
                i += 1;
                match client
                    .post(format!("{url}/invocations"))
                    .header("content-type", "text/csv")
                    .body(csv.clone())
                    .send()
                {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    ready.lock().unwrap().retain(|u| *u != pods[0].url);
    std::thread::sleep(Duration::from_millis(300));
    let [mut first, second] = pods;
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(first.child.id() as i32, libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let status = first.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed");
    assert!(ok.load(Ordering::Relaxed) > 50, "the load ran");
    let mut second = second;
    let _ = second.child.kill();
    let _ = second.child.wait();
}

/// Config tables putting `stage` on Kubernetes: its Service at `url`, the environment repo
/// and artifact store at `env` and `store`, pods fetching from `artifact_base_url`.
fn kube_tables(
    stage: &str,
    url: &str,
    env: &Path,
    store: &Path,
    artifact_base_url: &str,
) -> String {
    format!(
        "[deploy.{stage}]\ntarget = \"kubernetes\"\nurl = \"{url}\"\n\n\
         [kubernetes]\nenv_repo = \"{}\"\nimage = \"registry.bank.example/rcfops:0.1.0\"\n\
         namespace = \"fraud-scoring\"\nartifact_store = \"{}\"\nartifact_base_url = \"{artifact_base_url}\"\n",
        env.display(),
        store.display()
    )
}

fn env_head(path: &Path) -> (String, String) {
    let repo = git2::Repository::open(path).unwrap();
    let c = repo.head().unwrap().peel_to_commit().unwrap();
    (c.id().to_string(), c.message().unwrap_or("").to_string())
}

/// Production on Kubernetes through the environment repo: a promotion is a commit naming the
/// version, digest and approver; a restart commits nothing; the rendered Deployment, run by the
/// test's kubelet, serves the version's scores at the configured Service URL (`rcfops score`
/// goes there); a rollback is a new commit rendering the earlier version.
#[test]
fn promotions_and_rollbacks_are_environment_repo_commits() {
    let dirs = tempfile::tempdir().unwrap();
    let env = dirs.path().join("env-repo");
    let store = dirs.path().join("artifacts");
    let port = free_port();
    let extra = kube_tables(
        "production",
        &format!("http://127.0.0.1:{port}"),
        &env,
        &store,
        &format!("file://{}", store.display()),
    );
    let p = common::Project::new(&extra);
    // `rcfops init` created the environment repo with an empty first commit.
    let (c0, _) = env_head(&env);
    assert_eq!(
        git2::Repository::open(&env)
            .unwrap()
            .find_commit(git2::Oid::from_str(&c0).unwrap())
            .unwrap()
            .tree()
            .unwrap()
            .len(),
        0
    );
    let mut agent = p.start();
    p.v1_live();
    let (c1, msg1) = env_head(&env);
    let v1 = p.registry().version(1).unwrap().unwrap();
    assert!(msg1.contains(": v1"), "{msg1}");
    assert!(msg1.contains(&v1.artifact_sha256), "{msg1}");
    assert!(msg1.contains("lead@bank.example"), "{msg1}");
    assert!(store
        .join(format!("sha256-{}.rcfm", v1.artifact_sha256))
        .exists());
    let group = p.status()["endpoints"]["production"]["name"]
        .as_str()
        .unwrap()
        .trim_end_matches("-prod")
        .to_string();
    let folder = env.join(&group).join("production");
    let dep: Value =
        serde_yaml::from_str(&std::fs::read_to_string(folder.join("deployment.yaml")).unwrap())
            .unwrap();
    let errs = errors(&dep);
    assert!(errs.is_empty(), "{errs:#?}");
    assert_eq!(
        dep["spec"]["template"]["metadata"]["annotations"]["rcfops.dev/version"],
        "1"
    );

    // status names the commit that renders production, and its Service URL.
    let st = p.status();
    assert_eq!(st["endpoints"]["production"]["env_commit"], c1.as_str());
    assert_eq!(
        st["endpoints"]["production"]["url"],
        format!("http://127.0.0.1:{port}").as_str()
    );
    // The deployment's audit event names the commit.
    let audit = String::from_utf8(p.rcfops(&["audit", "--json"]).stdout).unwrap();
    assert!(
        audit.contains(&format!("environment repo commit {c1}")),
        "{audit}"
    );
    // A restart renders the same bytes: no commit.
    agent.stop();
    let mut agent = p.start();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(env_head(&env).0, c1, "a restart committed");

    // The test's kubelet runs the rendered pod at the Service URL; rcfops score goes there.
    let mut pod = run_pod_on(&dep, port);
    let records = dirs.path().join("records.csv");
    std::fs::write(&records, "120.5,3,0.2,14,1,0,2.5,0\n").unwrap();
    let out = p.rcfops(&["score", "--stage", "production", records.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = Model::from_bytes(
        &std::fs::read(store.join(format!("sha256-{}.rcfm", v1.artifact_sha256))).unwrap(),
    )
    .unwrap();
    let want = model.score_rows(&[120.5, 3.0, 0.2, 14.0, 1.0, 0.0, 2.5, 0.0], 1)[0];
    let got: f64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(got, want);
    let _ = pod.child.kill();
    let _ = pod.child.wait();

    // v2 promoted, then production rolled back: two more commits, the last rendering v1.
    p.commit_spec(|t| t.replace("seed = 42", "seed = 9"), "reseed");
    p.wait_version(2);
    p.approve_and_wait(2);
    p.promote_and_wait(2);
    let (c2, msg2) = env_head(&env);
    assert_ne!(c2, c1);
    assert!(msg2.contains(": v2"), "{msg2}");
    let out = p.rcfops(&["rollback", "production", "--reason", "latency regression"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.wait_status("production back on v1", |s| {
        common::stage_version(s, "production") == Some(1)
    });
    let ok = common::wait_until(Duration::from_secs(10), || env_head(&env).0 != c2);
    assert!(ok, "no rollback commit");
    let (c3, msg3) = env_head(&env);
    assert!(msg3.contains(": v1"), "{msg3}");
    assert_ne!(c3, c1, "a rollback is a new commit");
    let dep: Value =
        serde_yaml::from_str(&std::fs::read_to_string(folder.join("deployment.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        dep["spec"]["template"]["metadata"]["annotations"]["rcfops.dev/version"],
        "1"
    );
    agent.stop();
}

/// Staging on Kubernetes whose Service never answers: a failed staging test with the reason,
/// after the bounded wait. A dirty environment repo: nothing committed, nothing recorded as
/// deployed, and the reason in the log.
#[test]
fn an_unanswering_service_fails_staging_and_a_dirty_env_repo_is_refused() {
    let dirs = tempfile::tempdir().unwrap();
    let env = dirs.path().join("env-repo");
    let store = dirs.path().join("artifacts");
    let port = free_port();
    let extra = kube_tables(
        "staging",
        &format!("http://127.0.0.1:{port}"),
        &env,
        &store,
        "https://artifacts.bank.example",
    );
    let p = common::Project::new(&extra);
    let text = std::fs::read_to_string(&p.cfg_path).unwrap();
    std::fs::write(
        &p.cfg_path,
        text.replace("[agent]\n", "[agent]\nrollout_timeout_ms = 1500\n"),
    )
    .unwrap();
    let mut agent = p.start();
    p.wait_version(1);
    let v1 = p.version_commit(1);
    p.tag("approve/v1", &v1, "dana@bank.example");
    let s = p.wait_status("v1's staging tests", |s| {
        s["versions"][0]["staging_tests"] == "Failed"
    });
    let detail = s["versions"][0]["staging_detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains(&format!(
            "http://127.0.0.1:{port} did not answer /ping as v1 within 1 s"
        )),
        "{detail}"
    );
    // The rollout that was tested is in the environment repo's history.
    let repo = git2::Repository::open(&env).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    let messages: Vec<String> = walk
        .map(|id| {
            repo.find_commit(id.unwrap())
                .unwrap()
                .message()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("staging: v1")),
        "{messages:?}"
    );
    agent.stop();

    // A hand edit in the environment repo: the next render is refused, nothing committed.
    let head = env_head(&env).0;
    std::fs::write(env.join("NOTES.md"), "hand edit\n").unwrap();
    let mut agent = p.start();
    p.commit_spec(|t| t.replace("seed = 42", "seed = 9"), "reseed");
    p.wait_version(2);
    let v2 = p.version_commit(2);
    p.tag("approve/v2", &v2, "dana@bank.example");
    let ok = common::wait_until(Duration::from_secs(20), || {
        p.agent_stderr().contains("uncommitted changes")
    });
    assert!(ok, "{}", p.agent_stderr());
    assert_eq!(env_head(&env).0, head, "committed over a dirty repo");
    assert_ne!(
        common::stage_version(&p.status(), "staging"),
        Some(2),
        "recorded as deployed"
    );
    assert_eq!(
        std::fs::read_to_string(env.join("NOTES.md")).unwrap(),
        "hand edit\n"
    );
    agent.stop();
}

/// kill -9 (SIGABRT) at each environment-repo failure point during a promotion: after the
/// restart the promotion is committed exactly once and the work tree matches it.
#[test]
fn a_crash_at_each_env_repo_point_commits_the_promotion_exactly_once() {
    use std::os::unix::process::ExitStatusExt;
    for &point in rcfops::failpoint::KUBERNETES_POINTS {
        let dirs = tempfile::tempdir().unwrap();
        let env = dirs.path().join("env-repo");
        let store = dirs.path().join("artifacts");
        let extra = kube_tables(
            "production",
            "http://127.0.0.1:9",
            &env,
            &store,
            "https://a.example",
        );
        let p = common::Project::new(&extra);
        let spec = format!("{point}=abort");
        let mut agent = p.start_with(&[("RCFOPS_FAILPOINTS", spec.as_str())]);
        p.wait_version(1);
        p.approve_and_wait(1);
        p.promote_tag(1, "lead@bank.example");
        let status = agent
            .wait_exit(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{point} not reached: {}", p.agent_stderr()));
        assert_eq!(status.signal(), Some(6), "{point}: {status:?}");
        drop(agent);
        let mut agent = p.start();
        p.wait_status("production on v1", |s| {
            common::stage_version(s, "production") == Some(1)
        });
        let repo = git2::Repository::open(&env).unwrap();
        let mut walk = repo.revwalk().unwrap();
        walk.push_head().unwrap();
        let v1_commits = walk
            .filter(|id| {
                repo.find_commit(*id.as_ref().unwrap())
                    .unwrap()
                    .message()
                    .unwrap()
                    .contains("production: v1")
            })
            .count();
        assert_eq!(v1_commits, 1, "{point}");
        let statuses = repo.statuses(None).unwrap();
        assert!(
            statuses.iter().all(|s| s.status() == git2::Status::CURRENT),
            "{point}: the work tree does not match the commit"
        );
        agent.stop();
    }
}

/// An artifact store that cannot be written: the promotion is not rendered, nothing is
/// committed, production is not recorded as serving it, and the log says why.
#[test]
fn an_unwritable_artifact_store_commits_nothing() {
    let dirs = tempfile::tempdir().unwrap();
    let env = dirs.path().join("env-repo");
    let store = dirs.path().join("store-is-a-file");
    std::fs::write(&store, "not a folder\n").unwrap();
    let extra = kube_tables(
        "production",
        "http://127.0.0.1:9",
        &env,
        &store,
        "https://a.example",
    );
    let p = common::Project::new(&extra);
    let head = env_head(&env).0;
    let mut agent = p.start();
    p.wait_version(1);
    p.approve_and_wait(1);
    p.promote_tag(1, "lead@bank.example");
    let ok = common::wait_until(Duration::from_secs(20), || {
        p.agent_stderr().contains("cannot write the artifact store")
    });
    assert!(ok, "{}", p.agent_stderr());
    assert_eq!(env_head(&env).0, head);
    assert_eq!(common::stage_version(&p.status(), "production"), None);
    agent.stop();
}
