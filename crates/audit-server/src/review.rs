//! The `admission.k8s.io/v1` AdmissionReview envelope: parsing requests, finding the images
//! of Pods and pod-template workloads, and writing responses
//! (<https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/>).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Kinds whose images are checked, and the JSON pointer of their pod spec.
const POD_SPECS: &[(&str, &str, &str)] = &[
    ("", "Pod", "/spec"),
    ("", "PodTemplate", "/template/spec"),
    ("", "ReplicationController", "/spec/template/spec"),
    ("apps", "Deployment", "/spec/template/spec"),
    ("apps", "ReplicaSet", "/spec/template/spec"),
    ("apps", "StatefulSet", "/spec/template/spec"),
    ("apps", "DaemonSet", "/spec/template/spec"),
    ("batch", "Job", "/spec/template/spec"),
    ("batch", "CronJob", "/spec/jobTemplate/spec/template/spec"),
];

/// Most warnings returned: the API server may drop long lists, and users read few.
pub(crate) const MAX_WARNINGS: usize = 10;
/// Longest warning, in characters (the Kubernetes docs ask for under 120).
pub(crate) const MAX_WARNING_CHARS: usize = 120;
/// Most lines of a denial message before "… and N more".
pub(crate) const MAX_MESSAGE_LINES: usize = 20;
/// Longest line of a denial message, in characters.
pub(crate) const MAX_LINE_CHARS: usize = 300;

/// Why a body is not an AdmissionReview we can answer (HTTP 400).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadReview(pub(crate) String);

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<Value>,
}

/// `{group, version, kind}`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct Gvk {
    #[serde(default)]
    pub(crate) group: String,
    #[serde(default)]
    pub(crate) version: String,
    #[serde(default)]
    pub(crate) kind: String,
}

/// The parts of `request` we use.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Request {
    pub(crate) uid: String,
    pub(crate) kind: Gvk,
    #[serde(default)]
    pub(crate) sub_resource: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    #[serde(default)]
    pub(crate) operation: String,
    #[serde(default)]
    pub(crate) object: Option<Value>,
    #[serde(default)]
    pub(crate) old_object: Option<Value>,
}

/// Parses a request body.
pub(crate) fn parse(body: &[u8]) -> Result<Request, BadReview> {
    let e: Envelope = serde_json::from_slice(body)
        .map_err(|e| BadReview(format!("not an AdmissionReview: {e}")))?;
    if e.api_version.as_deref() != Some("admission.k8s.io/v1")
        || e.kind.as_deref() != Some("AdmissionReview")
    {
        return Err(BadReview(format!(
            "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got {:?} {:?}",
            e.api_version.unwrap_or_default(),
            e.kind.unwrap_or_default()
        )));
    }
    let r = e
        .request
        .filter(|r| !r.is_null())
        .ok_or_else(|| BadReview("AdmissionReview without a request".into()))?;
    let r =
        Request::deserialize(r).map_err(|e| BadReview(format!("AdmissionReview request: {e}")))?;
    if r.uid.is_empty() {
        return Err(BadReview("request without a uid".into()));
    }
    Ok(r)
}

/// Where an image was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageUse {
    /// `containers[app]`, `initContainers[setup]`, `ephemeralContainers[debugger]`,
    /// `volumes[data]`.
    pub(crate) at: String,
    pub(crate) image: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    containers: Vec<Container>,
    #[serde(default)]
    init_containers: Vec<Container>,
    #[serde(default)]
    ephemeral_containers: Vec<Container>,
    #[serde(default)]
    volumes: Vec<Volume>,
}

#[derive(Deserialize)]
struct Container {
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: Option<String>,
}

#[derive(Deserialize)]
struct Volume {
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: Option<ImageVolume>,
}

#[derive(Deserialize)]
struct ImageVolume {
    #[serde(default)]
    reference: Option<String>,
}

/// What a request asks us to check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Subject {
    /// Images to check (possibly none: templates may leave `image` to a later mutation).
    Images(Vec<ImageUse>),
    /// A kind we do not inspect: allowed.
    Unsupported(String),
    /// DELETE, CONNECT, or an object-less request: allowed.
    Nothing,
}

/// The images a request introduces. On UPDATE only images that the old object did not
/// already use are checked (an unrelated change to a running workload is not blocked by a
/// policy change), which also picks out the new ephemeral containers of a
/// `pods/ephemeralcontainers` UPDATE.
pub(crate) fn subject(r: &Request) -> Result<Subject, BadReview> {
    if !matches!(r.operation.as_str(), "CREATE" | "UPDATE") {
        return Ok(Subject::Nothing);
    }
    let Some(pointer) = POD_SPECS
        .iter()
        .find(|(g, k, _)| *g == r.kind.group && *k == r.kind.kind)
        .map(|(_, _, p)| *p)
    else {
        let g = if r.kind.group.is_empty() {
            String::new()
        } else {
            format!("{}/", r.kind.group)
        };
        return Ok(Subject::Unsupported(format!("{g}{}", r.kind.kind)));
    };
    let Some(obj) = &r.object else {
        return Ok(Subject::Nothing);
    };
    let mut uses = images(obj, pointer)?;
    if r.operation == "UPDATE" {
        if let Some(old) = &r.old_object {
            let before: Vec<String> = images(old, pointer)
                .unwrap_or_default()
                .into_iter()
                .map(|u| u.image)
                .collect();
            uses.retain(|u| !before.contains(&u.image));
        }
    }
    Ok(Subject::Images(uses))
}

fn images(obj: &Value, pointer: &str) -> Result<Vec<ImageUse>, BadReview> {
    let Some(spec) = obj.pointer(pointer) else {
        return Ok(Vec::new());
    };
    let spec =
        PodSpec::deserialize(spec).map_err(|e| BadReview(format!("object{pointer}: {e}")))?;
    let mut out = Vec::new();
    for (what, list) in [
        ("initContainers", &spec.init_containers),
        ("containers", &spec.containers),
        ("ephemeralContainers", &spec.ephemeral_containers),
    ] {
        for c in list {
            if let Some(image) = c.image.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
                out.push(ImageUse {
                    at: format!("{what}[{}]", c.name),
                    image: image.to_string(),
                });
            }
        }
    }
    for v in &spec.volumes {
        if let Some(image) = v
            .image
            .as_ref()
            .and_then(|i| i.reference.as_deref())
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            out.push(ImageUse {
                at: format!("volumes[{}]", v.name),
                image: image.to_string(),
            });
        }
    }
    Ok(out)
}

/// `response` of an AdmissionReview.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Response {
    pub(crate) uid: String,
    pub(crate) allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) warnings: Vec<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) audit_annotations: std::collections::BTreeMap<String, String>,
}

/// `metav1.Status` of a denial.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
}

impl Response {
    /// The answer body: an AdmissionReview of the same version and kind carrying `response`.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(rename = "apiVersion")]
            api_version: &'static str,
            kind: &'static str,
            response: &'a Response,
        }
        serde_json::to_vec(&Out {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response: self,
        })
        .unwrap_or_default()
    }
}

/// Cuts `s` to `max` characters, ending with `…` when cut; newlines become spaces.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one.chars().count() <= max {
        return one;
    }
    let mut out: String = one.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Bounded warnings: each clipped, at most [`MAX_WARNINGS`] (the last says how many more).
pub(crate) fn bound_warnings(mut w: Vec<String>) -> Vec<String> {
    w.dedup();
    if w.len() > MAX_WARNINGS {
        let more = w.len() - (MAX_WARNINGS - 1);
        w.truncate(MAX_WARNINGS - 1);
        w.push(format!(
            "imgaudit: {more} more warnings (see the webhook's log)"
        ));
    }
    w.into_iter().map(|s| clip(&s, MAX_WARNING_CHARS)).collect()
}

/// A denial message: a headline, then one clipped line each, at most [`MAX_MESSAGE_LINES`].
pub(crate) fn message(headline: &str, lines: &[String]) -> String {
    let mut out = headline.to_string();
    for l in lines.iter().take(MAX_MESSAGE_LINES) {
        out.push('\n');
        out.push_str(&clip(l, MAX_LINE_CHARS));
    }
    if lines.len() > MAX_MESSAGE_LINES {
        out.push_str(&format!("\n… and {} more", lines.len() - MAX_MESSAGE_LINES));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn review(
        kind: (&str, &str),
        op: &str,
        sub: Option<&str>,
        object: Value,
        old: Option<Value>,
    ) -> Request {
        let body = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
                        "resource": {"group": kind.0, "version": "v1", "resource": "x"}, "subResource": sub,
                        "namespace": "default", "operation": op, "object": object, "oldObject": old}
        });
        parse(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn pod_spec() -> Value {
        json!({"initContainers": [{"name": "setup", "image": "busybox:1.36"}],
               "containers": [{"name": "app", "image": "ghcr.io/acme/app:1"}, {"name": "side", "image": "envoy:1"}, {"name": "later"}],
               "volumes": [{"name": "data", "image": {"reference": "ghcr.io/acme/data:7"}}, {"name": "tmp", "emptyDir": {}}]})
    }

    fn names(s: Subject) -> Vec<String> {
        match s {
            Subject::Images(v) => v
                .into_iter()
                .map(|u| format!("{}={}", u.at, u.image))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn images_of_every_workload_kind() {
        let want = [
            "initContainers[setup]=busybox:1.36",
            "containers[app]=ghcr.io/acme/app:1",
            "containers[side]=envoy:1",
            "volumes[data]=ghcr.io/acme/data:7",
        ];
        let tpl = json!({"template": {"spec": pod_spec()}});
        let cases = [
            (("", "Pod"), json!({"spec": pod_spec()})),
            (("apps", "Deployment"), json!({"spec": tpl.clone()})),
            (("apps", "ReplicaSet"), json!({"spec": tpl.clone()})),
            (("apps", "StatefulSet"), json!({"spec": tpl.clone()})),
            (("apps", "DaemonSet"), json!({"spec": tpl.clone()})),
            (("batch", "Job"), json!({"spec": tpl.clone()})),
            (("", "ReplicationController"), json!({"spec": tpl.clone()})),
            (("", "PodTemplate"), tpl.clone()),
            (
                ("batch", "CronJob"),
                json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": tpl.clone()}}}),
            ),
        ];
        for (kind, obj) in cases {
            assert_eq!(
                names(subject(&review(kind, "CREATE", None, obj, None)).unwrap()),
                want,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn updates_check_only_new_images_and_ephemeral_containers() {
        let old = json!({"spec": pod_spec()});
        let mut new = old.clone();
        new["spec"]["ephemeralContainers"] =
            json!([{"name": "debugger", "image": "nicolaka/netshoot"}]);
        let r = review(
            ("", "Pod"),
            "UPDATE",
            Some("ephemeralcontainers"),
            new,
            Some(old.clone()),
        );
        assert_eq!(
            names(subject(&r).unwrap()),
            ["ephemeralContainers[debugger]=nicolaka/netshoot"]
        );
        // A label change: nothing new to check.
        let mut relabel = old.clone();
        relabel["metadata"] = json!({"labels": {"a": "b"}});
        assert!(names(
            subject(&review(
                ("", "Pod"),
                "UPDATE",
                None,
                relabel,
                Some(old.clone())
            ))
            .unwrap()
        )
        .is_empty());
        // An image bump.
        let mut bump = json!({"spec": {"template": {"spec": pod_spec()}}});
        bump["spec"]["template"]["spec"]["containers"][0]["image"] = json!("ghcr.io/acme/app:2");
        let r = review(
            ("apps", "Deployment"),
            "UPDATE",
            None,
            bump,
            Some(json!({"spec": {"template": {"spec": pod_spec()}}})),
        );
        assert_eq!(
            names(subject(&r).unwrap()),
            ["containers[app]=ghcr.io/acme/app:2"]
        );
    }

    #[test]
    fn other_kinds_operations_and_bad_envelopes() {
        let r = review(("", "ConfigMap"), "CREATE", None, json!({"data": {}}), None);
        assert_eq!(
            subject(&r).unwrap(),
            Subject::Unsupported("ConfigMap".into())
        );
        let r = review(("apps", "Deployment"), "DELETE", None, Value::Null, None);
        assert_eq!(subject(&r).unwrap(), Subject::Nothing);
        let r = review(
            ("", "Pod"),
            "CREATE",
            None,
            json!({"spec": {"containers": "nope"}}),
            None,
        );
        assert!(subject(&r).unwrap_err().0.starts_with("object/spec:"));
        assert!(names(
            subject(&review(
                ("", "Pod"),
                "CREATE",
                None,
                json!({"metadata": {}}),
                None
            ))
            .unwrap()
        )
        .is_empty());

        for (body, want) in [
            (&b"{not json"[..], "not an AdmissionReview"),
            (br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#, "expected apiVersion"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#, "expected apiVersion"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#, "without a request"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","kind":{}}}"#, "without a uid"),
        ] {
            assert!(parse(body).unwrap_err().0.contains(want), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn responses_echo_the_uid_and_bound_their_text() {
        let r = Response {
            uid: "u-9".into(),
            allowed: false,
            status: Some(Status {
                code: 403,
                reason: "Forbidden",
                message: message("denied", &["a".repeat(1000)]),
            }),
            warnings: bound_warnings(
                (0..30)
                    .map(|i| format!("w{i} {}", "x".repeat(200)))
                    .collect(),
            ),
            audit_annotations: [("digests".to_string(), "x".to_string())].into(),
        };
        let v: Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], "u-9");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 403);
        assert_eq!(v["response"]["auditAnnotations"]["digests"], "x");
        let w = v["response"]["warnings"].as_array().unwrap();
        assert_eq!(w.len(), MAX_WARNINGS);
        assert!(w
            .iter()
            .all(|s| s.as_str().unwrap().chars().count() <= MAX_WARNING_CHARS));
        assert!(w[MAX_WARNINGS - 1]
            .as_str()
            .unwrap()
            .contains("21 more warnings"));
        let m = v["response"]["status"]["message"].as_str().unwrap();
        assert!(m.lines().nth(1).unwrap().chars().count() == MAX_LINE_CHARS && m.ends_with('…'));
        let many: Vec<String> = (0..25).map(|i| format!("line {i}")).collect();
        assert!(message("h", &many).ends_with("… and 5 more"));
        assert_eq!(clip("a\nb", 10), "a b");
    }
}
