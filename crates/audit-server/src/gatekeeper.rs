//! OPA Gatekeeper's external data
//! (<https://open-policy-agent.github.io/gatekeeper/website/docs/externaldata>):
//! `POST /gatekeeper/images` with a `ProviderRequest` whose keys are image references, answered
//! with a `ProviderResponse` holding one item per key: `value` is the verdict (`allow`, `warn`
//! or `deny`), the manifest digest and the blocking findings, judged by the policy's default
//! `[admission]` thresholds (Gatekeeper's Constraint chooses the namespaces). Every image is
//! judged like the webhook judges it — verdict cache, shared verdicts, single-flight audits —
//! within `--provider-deadline`; an image without a verdict by then is decided by the
//! `failure_policy` and the answer is marked not idempotent, so Gatekeeper does not cache it.

use std::sync::Arc;

use audit_core::admission::{self, Decision, FailurePolicy, Mode};
use audit_core::source::ImageReference;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::engine::{Engine, Judged};
use super::http;

/// The protocol version spoken.
const API_VERSION: &str = "externaldata.gatekeeper.sh/v1beta1";
/// Most keys one request may carry (Gatekeeper batches the images of one object).
pub const MAX_PROVIDER_KEYS: usize = 1000;
/// Most blocking findings listed per image (the rest are counted).
const MAX_LISTED: usize = 20;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderRequest {
    api_version: String,
    kind: String,
    request: Keys,
}

#[derive(Deserialize)]
struct Keys {
    keys: Vec<String>,
}

fn response(items: Vec<Value>, system_error: &str, idempotent: bool) -> String {
    json!({
        "apiVersion": API_VERSION,
        "kind": "ProviderResponse",
        "response": {"idempotent": idempotent, "items": items, "systemError": system_error},
    })
    .to_string()
}

pub(crate) async fn provide(
    engine: &Arc<Engine>,
    req: Request<Incoming>,
    max: u64,
) -> Response<Full<Bytes>> {
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + engine.settings.provider_deadline;
    let bytes = match http::body_of(engine, req, max, &["application/json"]).await {
        Ok(b) => b,
        Err(a) => return a,
    };
    let refuse = |msg: String| {
        http::reply(
            engine,
            StatusCode::BAD_REQUEST,
            "application/json",
            response(Vec::new(), &msg, false),
        )
    };
    let keys = match serde_json::from_slice::<ProviderRequest>(&bytes) {
        Ok(r) if r.api_version == API_VERSION && r.kind == "ProviderRequest" => r.request.keys,
        Ok(_) => {
            return refuse(format!(
                "expected apiVersion {API_VERSION}, kind ProviderRequest"
            ))
        }
        Err(e) => return refuse(format!("not a ProviderRequest: {e}")),
    };
    if keys.len() > MAX_PROVIDER_KEYS {
        return refuse(format!(
            "{} keys, more than the limit of {MAX_PROVIDER_KEYS}",
            keys.len()
        ));
    }
    let mut distinct: Vec<&String> = keys.iter().collect();
    distinct.sort();
    distinct.dedup();
    let mut judged = std::collections::HashMap::new();
    let mut tasks = Vec::new();
    for k in distinct {
        if let Err(e) = ImageReference::parse(k) {
            judged.insert(k.clone(), Err(e.to_string()));
            continue;
        }
        let (me, image) = (Arc::clone(engine), k.clone());
        tasks.push((
            k.clone(),
            tokio::spawn(async move { me.judge(&image, deadline).await }),
        ));
    }
    for (k, t) in tasks {
        let j = t
            .await
            .unwrap_or_else(|e| Judged::NoVerdict(None, format!("internal error: {e}")));
        judged.insert(k, Ok(j));
    }
    let mut idempotent = true;
    let items = keys
        .iter()
        .map(|k| {
            let (value, error) = match judged.get(k) {
                Some(Ok(j)) => item(engine, j, &mut idempotent),
                Some(Err(e)) => (Value::Null, e.clone()),
                None => (Value::Null, "not judged".to_string()),
            };
            json!({"key": k, "value": value, "error": error})
        })
        .collect();
    engine.metrics.provider_seconds.observe(started.elapsed());
    http::reply(
        engine,
        StatusCode::OK,
        "application/json",
        response(items, "", idempotent),
    )
}

/// An image's value and error.
fn item(engine: &Engine, j: &Judged, idempotent: &mut bool) -> (Value, String) {
    let a = &engine.policy.admission;
    let t = &a.thresholds;
    let word = |d: Decision| match d {
        Decision::Allow => "allow",
        Decision::Warn => "warn",
        Decision::Deny => "deny",
    };
    let enforce = |d: Decision| match (d, t.mode) {
        (Decision::Deny, Mode::Warn) => Decision::Warn,
        (d, _) => d,
    };
    match j {
        Judged::Disallowed => (
            json!({"verdict": word(enforce(Decision::Deny)), "reason": "registry is not in the policy's allowed_registries"}),
            String::new(),
        ),
        Judged::NoVerdict(digest, reason) => {
            *idempotent = false;
            let fp = match a.failure_policy {
                FailurePolicy::FailOpen => "fail-open",
                FailurePolicy::FailClosed => "fail-closed",
            };
            (
                json!({
                    "verdict": match a.without_verdict(t) {
                        Decision::Deny => "deny",
                        _ => "allow",
                    },
                    "digest": digest.as_ref().map(ToString::to_string),
                    "reason": format!("no verdict ({reason}); decided by failure_policy {fp}"),
                }),
                String::new(),
            )
        }
        Judged::Verdict(d, audited) => {
            let v = admission::decide(&audited.findings, t);
            let line = |f: &&audit_core::Finding| {
                format!("{} {} ({}): {}", f.rule, f.name, f.severity, f.message)
            };
            (
                json!({
                    "verdict": word(enforce(v.decision)),
                    "digest": d.to_string(),
                    "blocking": v.blocking.iter().take(MAX_LISTED).map(line).collect::<Vec<_>>(),
                    "blocking_count": v.blocking.len(),
                    "warnings": v.warnings.iter().take(MAX_LISTED).map(line).collect::<Vec<_>>(),
                }),
                String::new(),
            )
        }
    }
}
