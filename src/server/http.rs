//! The HTTP routes: the two webhooks, health, readiness and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::metrics::{Metrics, Outcome};
use crate::admission::{self, Endpoint};
use crate::config::Config;

/// What every handler shares.
pub struct AppState {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// Readiness: true once serving, false from the start of shutdown.
    pub ready: Arc<AtomicBool>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/mutate-audit", post(mutate_audit))
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn mutate(State(s): State<Arc<AppState>>, req: Request) -> Response {
    admit(&s, Endpoint::Mutate, req).await
}

async fn mutate_audit(State(s): State<Arc<AppState>>, req: Request) -> Response {
    admit(&s, Endpoint::MutateAudit, req).await
}

async fn validate(State(s): State<Arc<AppState>>, req: Request) -> Response {
    admit(&s, Endpoint::Validate, req).await
}

/// A request refused before or by `admission::review`.
struct Rejection {
    status: StatusCode,
    message: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// Reads the body, reviews it, logs and counts the result.
async fn admit(s: &AppState, endpoint: Endpoint, req: Request) -> Response {
    let start = Instant::now();
    let body = match read_body(s, req).await {
        Ok(body) => body,
        Err(r) => return reject(s, endpoint, start, None, r),
    };
    match admission::review(endpoint, &body, &s.config) {
        Ok(reviewed) => {
            let elapsed = start.elapsed();
            let log = &reviewed.log;
            let outcome = if log.allowed {
                Outcome::Allowed
            } else {
                Outcome::Denied
            };
            s.metrics.record(
                endpoint,
                &log.operation,
                outcome,
                elapsed.as_secs_f64(),
                (log.patch_ops, log.patch_bytes),
            );
            s.metrics.would_deny(&log.would_deny);
            tracing::info!(
                webhook = webhook_name(endpoint),
                uid = log.uid.as_str(),
                kind = log.kind.as_str(),
                operation = log.operation.as_str(),
                namespace = log.namespace.as_str(),
                name = log.name.as_str(),
                allowed = log.allowed,
                patch_ops = log.patch_ops,
                patch_bytes = log.patch_bytes,
                duration_us = elapsed.as_micros() as u64,
                "review"
            );
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                reviewed.body,
            )
                .into_response()
        }
        Err(bad) => reject(
            s,
            endpoint,
            start,
            Some(&body),
            Rejection::new(
                StatusCode::BAD_REQUEST,
                format!("bad AdmissionReview: {}", bad.0),
            ),
        ),
    }
}

/// Checks the content type and reads at most `max_body_bytes` within
/// `body_timeout`.
async fn read_body(s: &AppState, req: Request) -> Result<Bytes, Rejection> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        let refused = Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type must be application/json, got {content_type:?}"),
        );
        // Read (and drop) the body first, within the usual limits: an HTTP/2
        // answer sent before the request ends resets the stream, and some
        // clients then report the reset instead of the 415.
        let body = Limited::new(req.into_body(), s.max_body_bytes);
        let _ = tokio::time::timeout(s.body_timeout, body.collect()).await;
        return Err(refused);
    }
    let too_large = || {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {} bytes", s.max_body_bytes),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body_bytes as u64) {
        return Err(too_large());
    }
    let limited = Limited::new(req.into_body(), s.max_body_bytes);
    let timed_out = || {
        Rejection::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {}s",
                s.body_timeout.as_secs_f32()
            ),
        )
    };
    match tokio::time::timeout(s.body_timeout, limited.collect()).await {
        Err(_) => Err(timed_out()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) if is_timeout(&*e) => Err(timed_out()),
        Ok(Err(e)) => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}"),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Whether a body read failed on the connection's request deadline.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Answers with an HTTP error, logged (with the review's uid when the body
/// carries one) and counted.
fn reject(
    s: &AppState,
    endpoint: Endpoint,
    start: Instant,
    body: Option<&[u8]>,
    r: Rejection,
) -> Response {
    let elapsed = start.elapsed();
    let (uid, operation) = body.map(uid_and_operation).unwrap_or_default();
    s.metrics.record(
        endpoint,
        &operation,
        Outcome::Rejected(r.status.as_u16()),
        elapsed.as_secs_f64(),
        (0, 0),
    );
    tracing::warn!(
        webhook = webhook_name(endpoint),
        uid = uid.as_str(),
        status = r.status.as_u16(),
        error = r.message.as_str(),
        duration_us = elapsed.as_micros() as u64,
        "review rejected"
    );
    let mut message = r.message;
    message.push('\n');
    (
        r.status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        Body::from(message),
    )
        .into_response()
}

/// Best effort `request.uid` and `request.operation` of a body that
/// `admission::review` refused (error path only: the hot path never parses
/// twice).
fn uid_and_operation(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize, Default)]
    struct Review {
        #[serde(default)]
        request: Option<Req>,
    }
    #[derive(serde::Deserialize, Default)]
    struct Req {
        #[serde(default)]
        uid: Option<String>,
        #[serde(default)]
        operation: Option<String>,
    }
    let req = serde_json::from_slice::<Review>(body)
        .ok()
        .and_then(|r| r.request)
        .unwrap_or_default();
    (
        req.uid.unwrap_or_default(),
        req.operation.unwrap_or_default(),
    )
}

fn webhook_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Mutate => "mutate",
        Endpoint::MutateAudit => "mutate-audit",
        Endpoint::Validate => "validate",
    }
}
