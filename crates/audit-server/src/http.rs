//! Routes: `POST /validate`, `POST /prefetch`, `POST /gatekeeper/images` (Gatekeeper's
//! external data), `GET /healthz`, `/readyz`, `/metrics`. Bodies
//! are bounded; anything that is not an AdmissionReview gets a 4xx and the server goes on.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::engine::Engine;

/// Most images one `/prefetch` request may list.
const MAX_PREFETCH_IMAGES: usize = 1000;
/// An oversized body is read and dropped up to this many bytes (16 MiB, for at most
/// [`DRAIN_TIME`]) before the 413 goes out, so the client sees the answer instead of a reset
/// connection; past that the connection is closed.
const MAX_DRAIN: u64 = 16 << 20;
/// See [`MAX_DRAIN`]: 2 s.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// The API server's own timeout is subtracted by this much to leave time for the answer.
const TIMEOUT_MARGIN: Duration = Duration::from_millis(500);

type Answer = Response<Full<Bytes>>;

pub(crate) fn reply(
    engine: &Engine,
    code: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Answer {
    engine.metrics.http.inc(code.as_str());
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = code;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn text(engine: &Engine, code: StatusCode, msg: &str) -> Answer {
    reply(
        engine,
        code,
        "text/plain; charset=utf-8",
        format!("{msg}\n"),
    )
}

/// `/healthz`, `/readyz` and `/metrics`, answered alike on every listener.
pub(crate) fn probe(e: &Engine, method: &Method, path: &str) -> Option<Answer> {
    Some(match (method, path) {
        (&Method::GET, "/healthz") => text(e, StatusCode::OK, "ok"),
        (&Method::GET, "/readyz") if e.ready() => text(e, StatusCode::OK, "ready"),
        (&Method::GET, "/readyz") => text(e, StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        (&Method::GET, "/metrics") => reply(
            e,
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            e.render_metrics(),
        ),
        (_, "/healthz" | "/readyz" | "/metrics") => {
            text(e, StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => return None,
    })
}

pub(crate) async fn handle(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    max_body: u64,
) -> Result<Answer, Infallible> {
    let path = req.uri().path().to_string();
    let e = &*engine;
    if let Some(a) = probe(e, req.method(), &path) {
        return Ok(a);
    }
    Ok(match (req.method(), path.as_str()) {
        (&Method::POST, "/validate") => validate(&engine, req, max_body).await,
        (&Method::POST, "/prefetch") => prefetch(&engine, req, max_body).await,
        (&Method::POST, GATEKEEPER_PATH) => {
            super::gatekeeper::provide(&engine, req, max_body).await
        }
        (_, "/validate" | "/prefetch" | GATEKEEPER_PATH) => {
            text(e, StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => text(e, StatusCode::NOT_FOUND, "not found"),
    })
}

/// Where Gatekeeper's external-data requests go (the `Provider`'s `url` path).
pub(crate) const GATEKEEPER_PATH: &str = "/gatekeeper/images";

/// The body of a JSON request (`Content-Type: application/json` or absent).
async fn body(engine: &Engine, req: Request<Incoming>, max: u64) -> Result<Bytes, Answer> {
    body_of(engine, req, max, &["application/json"]).await
}

/// The body, at most `max` bytes, when its `Content-Type` (if any) is one of `types`; or the
/// answer to give instead.
pub(crate) async fn body_of(
    engine: &Engine,
    req: Request<Incoming>,
    max: u64,
    types: &[&str],
) -> Result<Bytes, Answer> {
    if let Some(ct) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !types.iter().any(|t| essence.eq_ignore_ascii_case(t)) {
            return Err(text(
                engine,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("expected Content-Type: {}", types.join(" or ")),
            ));
        }
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = req.into_body();
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(max) as usize);
    let mut seen = 0u64;
    let drain_until = tokio::time::Instant::now() + DRAIN_TIME;
    let mut over = declared.is_some_and(|n| n > max);
    if declared.is_some_and(|n| n > MAX_DRAIN) {
        return Err(text(
            engine,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {max} bytes"),
        ));
    }
    loop {
        let frame = if over {
            match tokio::time::timeout_at(drain_until, body.frame()).await {
                Ok(f) => f,
                Err(_) => break,
            }
        } else {
            body.frame().await
        };
        let Some(frame) = frame else { break };
        let frame = match frame {
            Ok(f) => f,
            Err(err) => {
                return Err(text(
                    engine,
                    StatusCode::BAD_REQUEST,
                    &format!("reading the request body: {err}"),
                ))
            }
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > max {
                over = true;
            }
            if !over {
                buf.extend_from_slice(&data);
            } else if seen > MAX_DRAIN {
                break;
            }
        }
    }
    if over {
        return Err(text(
            engine,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {max} bytes"),
        ));
    }
    Ok(Bytes::from(buf))
}

/// The deadline: `--deadline`, shortened to the API server's own `?timeout=Ns` minus a margin.
fn deadline(engine: &Engine, query: Option<&str>) -> tokio::time::Instant {
    let mut d = engine.settings.deadline;
    let asked = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("timeout="))
        .and_then(|v| v.strip_suffix('s'))
        .and_then(|v| v.parse::<f64>().ok());
    if let Some(secs) = asked.filter(|s| s.is_finite() && *s > 0.0) {
        d = d.min(
            Duration::from_secs_f64(secs)
                .saturating_sub(TIMEOUT_MARGIN)
                .max(Duration::from_millis(100)),
        );
    }
    tokio::time::Instant::now() + d
}

async fn validate(engine: &Arc<Engine>, req: Request<Incoming>, max: u64) -> Answer {
    let started = std::time::Instant::now();
    let deadline = deadline(engine, req.uri().query());
    let bytes = match body(engine, req, max).await {
        Ok(b) => b,
        Err(a) => return a,
    };
    let a = match engine.validate(&bytes, deadline).await {
        Ok(resp) => reply(engine, StatusCode::OK, "application/json", resp.to_json()),
        Err(bad) => {
            tracing::warn!(error = %bad.0, "bad admission request");
            text(engine, StatusCode::BAD_REQUEST, &bad.0)
        }
    };
    engine.metrics.validate_seconds.observe(started.elapsed());
    a
}

/// `{"images": ["REF", …]}` (or a bare array): starts audits in the background, 202.
async fn prefetch(engine: &Arc<Engine>, req: Request<Incoming>, max: u64) -> Answer {
    let bytes = match body(engine, req, max).await {
        Ok(b) => b,
        Err(a) => return a,
    };
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Body {
        List(Vec<String>),
        Object { images: Vec<String> },
    }
    let images = match serde_json::from_slice::<Body>(&bytes) {
        Ok(Body::List(v) | Body::Object { images: v }) => v,
        Err(e) => {
            return text(
                engine,
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"images\": [\"REF\", …]}}: {e}"),
            )
        }
    };
    if images.len() > MAX_PREFETCH_IMAGES {
        return text(
            engine,
            StatusCode::BAD_REQUEST,
            &format!("more than {MAX_PREFETCH_IMAGES} images"),
        );
    }
    let mut invalid = Vec::new();
    let mut accepted = 0;
    for i in images {
        if let Err(e) = audit_core::source::ImageReference::parse(&i) {
            invalid.push(serde_json::json!({"image": i, "error": e.to_string()}));
            continue;
        }
        accepted += 1;
        let me = Arc::clone(engine);
        tokio::spawn(async move {
            if let Err(e) = Arc::clone(&me).warm(i.clone()).await {
                tracing::warn!(image = %i, error = %e, "prefetch failed");
            }
        });
    }
    let body = serde_json::json!({"accepted": accepted, "invalid": invalid});
    reply(
        engine,
        StatusCode::ACCEPTED,
        "application/json",
        body.to_string(),
    )
}
