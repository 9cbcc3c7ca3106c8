//! The HTTP routes: the two webhooks, health, readiness and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;

use super::budget::{Budget, Lease};
use super::metrics::{Metrics, Outcome};
use crate::admission::{self, Endpoint};
use crate::config::Config;

/// What every handler shares.
pub struct AppState {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive, at most.
    pub body_timeout: Duration,
    /// Slowest accepted body, bytes/s (after a first second).
    pub min_body_rate: u64,
    /// The bytes of request bodies held at once.
    pub budget: Arc<Budget>,
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

/// The router of the plain-HTTP metrics port: metrics, health and readiness
/// (the kubelet's probes and Prometheus), never the webhooks.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
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
            HeaderValue::from_static(super::metrics::CONTENT_TYPE),
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
    /// Answer with `Retry-After: 1` (the server is busy, not the request bad).
    retry_after: bool,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: false,
        }
    }
}

/// Reads the body, reviews it, logs and counts the result.
async fn admit(s: &AppState, endpoint: Endpoint, req: Request) -> Response {
    let start = Instant::now();
    let (body, _lease) = match read_body(s, req).await {
        Ok(read) => read,
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

/// Checks the content type and reads the body: at most `max_body_bytes`,
/// every byte leased from the global body budget before it is buffered, at
/// the minimum body rate and within `body_timeout`. A lease revoked by a
/// newer request, or a budget spent on complete bodies, answers 503 with
/// `Retry-After`; the lease is returned with the body and held until the
/// review is done.
async fn read_body(s: &AppState, req: Request) -> Result<(Vec<u8>, Lease), Rejection> {
    let start = tokio::time::Instant::now();
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
        settle(s, req);
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
        settle(s, req);
        return Err(too_large());
    }
    let declared = declared.map_or(0, |n| n as usize);
    let lease = s.budget.lease();
    if lease.grow_to(declared).is_err() {
        settle(s, req);
        return Err(busy(s));
    }
    let timed_out = || {
        Rejection::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received in time (at least {} bytes/s, within {}s)",
                s.min_body_rate,
                s.body_timeout.as_secs_f32()
            ),
        )
    };
    let mut buf = Vec::with_capacity(declared);
    let mut body = req.into_body();
    let sleep = tokio::time::sleep_until(body_deadline(s, start, declared));
    tokio::pin!(sleep);
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            () = lease.revoked() => return Err(Rejection {
                retry_after: true,
                ..Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "request body dropped: its share of the body budget went to newer requests",
                )
            }),
            () = &mut sleep => return Err(timed_out()),
        };
        let data = match frame {
            None => break,
            Some(Err(e)) if is_timeout(&e) => return Err(timed_out()),
            Some(Err(e)) => {
                return Err(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                ));
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        let len = buf.len() + data.len();
        if len > s.max_body_bytes {
            return Err(too_large());
        }
        if len > buf.capacity() {
            // Undeclared length: grow geometrically, leasing the capacity.
            let want = len
                .max(buf.capacity() * 2)
                .clamp(8 * 1024, s.max_body_bytes);
            if lease.grow_to(want).is_err() {
                return Err(busy(s));
            }
            buf.reserve_exact(want - buf.len());
            sleep
                .as_mut()
                .reset(body_deadline(s, start, len.max(declared)));
        }
        buf.extend_from_slice(&data);
    }
    lease.complete();
    Ok((buf, lease))
}

/// When a body of `len` bytes must have arrived: a second plus its length
/// at the minimum rate, and never after `body_timeout`.
fn body_deadline(s: &AppState, start: tokio::time::Instant, len: usize) -> tokio::time::Instant {
    let at_rate = Duration::from_secs_f64(len as f64 / s.min_body_rate.max(1) as f64);
    start + (Duration::from_secs(1) + at_rate).min(s.body_timeout)
}

/// 503: the body budget is spent on bodies already complete.
fn busy(s: &AppState) -> Rejection {
    Rejection {
        retry_after: true,
        ..Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "busy: the {} bytes of request bodies the server holds at once are in use",
                s.budget.capacity()
            ),
        )
    }
}

/// Lets an HTTP/2 request whose answer does not need its body end cleanly:
/// the body is read and dropped (never buffered; at most `max_body_bytes`,
/// within `body_timeout`) after the answer, so the stream ends with the
/// client's END_STREAM instead of a reset that clients report in place of
/// the answer. HTTP/1.1 needs nothing: hyper closes the connection.
fn settle(s: &AppState, req: Request) {
    if req.version() != axum::http::Version::HTTP_2 {
        return;
    }
    let (limit, timeout) = (s.max_body_bytes, s.body_timeout);
    let mut body = req.into_body();
    tokio::spawn(async move {
        let drain = async {
            let mut seen = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, |d| d.len());
                if seen > limit {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, drain).await;
    });
}

/// Whether a body read failed on the connection's request deadline.
fn is_timeout(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
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
    let mut response = (
        r.status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        Body::from(message),
    )
        .into_response();
    if r.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
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
