//! Kubernetes manifests for a stage endpoint: what an environment repo holds so that Argo CD or
//! Flux runs `rcfops serve` as a Deployment behind a Service, autoscaled and rolled out without
//! dropping requests.
//!
//! [`render`] is pure: the same [`Workload`] gives byte-identical files (keys sorted, no
//! timestamps), so "nothing changed" is a byte comparison. The files are
//! `kustomization.yaml`, `deployment.yaml`, `service.yaml`, `hpa.yaml` and `pdb.yaml`.
//!
//! Not: write files, talk to git or a cluster (the caller does).

use serde_json::{json, Value};

use crate::domain::Stage;

/// The port `rcfops serve` listens on in the pod (SageMaker's container contract).
pub const CONTAINER_PORT: u16 = 8080;
/// Where the initContainer puts the artifact and the server reads it.
pub const MODEL_DIR: &str = "/opt/ml/model";
/// Where a SigV4 credentials Secret is mounted.
pub const CREDENTIALS_DIR: &str = "/var/run/secrets/rcfops";

/// SigV4 for the pods: the Secret holding a `credentials` file, and the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodAuth {
    pub secret: String,
    pub region: String,
    pub service: String,
}

/// Everything a stage's manifests depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub project: String,
    pub stage: Stage,
    pub version: i64,
    pub sha256: String,
    pub approved_by: String,
    pub image: String,
    pub namespace: String,
    /// The URL pods fetch the artifact from.
    pub artifact_url: String,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub cpu_request: String,
    pub memory_request: String,
    pub cpu_limit: String,
    pub memory_limit: String,
    /// `None`: the pods answer unsigned requests (the Service is cluster-internal).
    pub auth: Option<PodAuth>,
}

impl Workload {
    /// The Deployment, Service, HPA and PDB name: the endpoint name (`card-fraud-prod`).
    pub fn name(&self) -> String {
        self.stage.endpoint_name(&self.project)
    }

    fn labels(&self) -> Value {
        json!({
            "app.kubernetes.io/name": "rcfops-endpoint",
            "app.kubernetes.io/instance": self.name(),
            "app.kubernetes.io/component": self.stage.as_str(),
            "app.kubernetes.io/part-of": self.project,
            "app.kubernetes.io/managed-by": "rcfops",
        })
    }

    fn selector(&self) -> Value {
        json!({
            "app.kubernetes.io/name": "rcfops-endpoint",
            "app.kubernetes.io/instance": self.name(),
        })
    }
}

/// One rendered object and the file it goes in.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub file: &'static str,
    pub object: Value,
}

fn meta(w: &Workload) -> Value {
    json!({"name": w.name(), "namespace": w.namespace, "labels": w.labels()})
}

fn deployment(w: &Workload) -> Value {
    let security = json!({
        "runAsNonRoot": true,
        "readOnlyRootFilesystem": true,
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
    });
    let mut args = vec![
        "serve".to_string(),
        "--model".into(),
        MODEL_DIR.into(),
        "--sha256".into(),
        w.sha256.clone(),
        "--name".into(),
        w.name(),
        "--stage".into(),
        w.stage.as_str().into(),
        "--model-version".into(),
        w.version.to_string(),
        "--listen".into(),
        format!("0.0.0.0:{CONTAINER_PORT}"),
        "--shutdown-grace-seconds".into(),
        "20".into(),
    ];
    let mut mounts = vec![json!({"name": "model", "mountPath": MODEL_DIR, "readOnly": true})];
    let mut volumes = vec![json!({"name": "model", "emptyDir": {"sizeLimit": "1Gi"}})];
    match &w.auth {
        Some(a) => {
            args.extend([
                "--credentials-file".into(),
                format!("{CREDENTIALS_DIR}/credentials"),
                "--region".into(),
                a.region.clone(),
                "--service".into(),
                a.service.clone(),
            ]);
            mounts.push(
                json!({"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": true}),
            );
            volumes.push(json!({"name": "credentials", "secret": {"secretName": a.secret, "defaultMode": 0o400}}));
        }
        None => args.push("--allow-unauthenticated".into()),
    }
    let probe = |period: u32, failures: u32| {
        json!({
            "httpGet": {"path": "/ping", "port": "http"},
            "timeoutSeconds": 2,
            "periodSeconds": period,
            "failureThreshold": failures,
        })
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(w),
        "spec": {
            "selector": {"matchLabels": w.selector()},
            "revisionHistoryLimit": 5,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": w.labels(),
                    "annotations": {
                        "rcfops.dev/version": w.version.to_string(),
                        "rcfops.dev/artifact-sha256": w.sha256,
                        "rcfops.dev/approved-by": w.approved_by,
                    },
                },
                "spec": {
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "initContainers": [{
                        "name": "fetch-model",
                        "image": w.image,
                        "command": ["rcfops"],
                        "args": [
                            "artifact", "fetch", w.artifact_url,
                            "--sha256", w.sha256,
                            "--dest", MODEL_DIR,
                        ],
                        "volumeMounts": [{"name": "model", "mountPath": MODEL_DIR}],
                        "securityContext": security,
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"cpu": w.cpu_limit, "memory": w.memory_limit},
                        },
                    }],
                    "containers": [{
                        "name": "endpoint",
                        "image": w.image,
                        "command": ["rcfops"],
                        "args": args,
                        "env": [{"name": "RCFOPS_LOG", "value": "info"}],
                        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
                        "startupProbe": probe(1, 60),
                        "readinessProbe": probe(5, 2),
                        "livenessProbe": probe(10, 3),
                        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                        "resources": {
                            "requests": {"cpu": w.cpu_request, "memory": w.memory_request},
                            "limits": {"cpu": w.cpu_limit, "memory": w.memory_limit},
                        },
                        "volumeMounts": mounts,
                        "securityContext": security,
                    }],
                    "volumes": volumes,
                },
            },
        },
    })
}

fn service(w: &Workload) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(w),
        "spec": {
            "type": "ClusterIP",
            "selector": w.selector(),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    })
}

fn hpa(w: &Workload) -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(w),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name()},
            "minReplicas": w.min_replicas,
            "maxReplicas": w.max_replicas,
            "metrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
            }],
        },
    })
}

fn pdb(w: &Workload) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(w),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": w.selector()}},
    })
}

/// The four objects of a stage, in file order.
pub fn render(w: &Workload) -> Vec<Manifest> {
    vec![
        Manifest {
            file: "deployment.yaml",
            object: deployment(w),
        },
        Manifest {
            file: "service.yaml",
            object: service(w),
        },
        Manifest {
            file: "hpa.yaml",
            object: hpa(w),
        },
        Manifest {
            file: "pdb.yaml",
            object: pdb(w),
        },
    ]
}

/// The stage folder's files, names and bytes, `kustomization.yaml` first.
pub fn render_files(w: &Workload) -> Vec<(&'static str, String)> {
    let objects = render(w);
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": w.namespace,
        "resources": objects.iter().map(|m| m.file).collect::<Vec<_>>(),
    });
    let mut out = vec![("kustomization.yaml", header(w) + &to_yaml(&kustomization))];
    out.extend(
        objects
            .iter()
            .map(|m| (m.file, header(w) + &to_yaml(&m.object))),
    );
    out
}

fn header(w: &Workload) -> String {
    format!(
        "# Rendered by rcfops for {} v{} (artifact sha256 {}). Do not edit: the next promotion \
         replaces it.\n",
        w.name(),
        w.version,
        w.sha256
    )
}

/// YAML for a JSON value: block style, keys in the value's order (serde_json sorts them),
/// strings quoted whenever a plain scalar could be read as something else.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => serde_json::to_string(s).expect("a string serialises"),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        _ => unreachable!("containers are emitted as blocks"),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(o) if !o.is_empty())
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, val) in o {
                let key = serde_json::to_string(k).expect("a key serialises");
                let key = if k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
                {
                    k.clone()
                } else {
                    key
                };
                if is_block(val) {
                    out.push_str(&format!("{pad}{key}:\n"));
                    emit(val, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar(val)));
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                if is_block(item) {
                    // The first line of the item's block goes after "- ".
                    let mut inner = String::new();
                    emit(item, indent + 2, &mut inner);
                    let rest = &inner[indent + 2..];
                    out.push_str(&format!("{pad}- {rest}"));
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_reads_back_as_the_same_structure() {
        let v = json!({"a": [1, {"b": "x: y", "c": []}, [2, 3]], "d": {}, "e": "plain", "f": true});
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "a:\n  - 1\n  - b: \"x: y\"\n    c: []\n  - - 2\n    - 3\nd: {}\ne: \"plain\"\nf: true\n"
        );
    }
}
