//! The HTTP plumbing every service shares: problem+json errors, extractors, health,
//! metrics, and the middleware stack.

pub mod extract;
pub mod health;
pub mod metrics;
pub mod problem;
pub mod ratelimit;

use std::time::Duration;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::HeaderName,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

pub use problem::{ApiError, ApiResult, ConflictCode, FieldError, FieldErrors, OnConstraint, PROBLEM_JSON, Problem};

/// Bodies above this are refused with 413 unless a route raises its own limit.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a service's router in the shared stack: request ids, tracing spans, metrics, a
/// timeout, a body limit, panics turned into 500 problems, and problem+json for unknown
/// routes and methods.
pub fn with_middleware(
    router: Router,
    service: &'static str,
    timeout: Duration,
    ip_budget: Option<ratelimit::IpBudget>,
) -> Router {
    let router = match ip_budget {
        Some(budget) => router.layer(middleware::from_fn(move |req, next| budget.clone().enforce(req, next))),
        None => router,
    };
    router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(move |req, next| with_timeout(timeout, req, next)))
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(move |req: &Request| {
                            let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
                            let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok());
                            tracing::info_span!("http", service, method = %req.method(), route, request_id)
                        })
                        // Failures are logged once, with their cause, where the problem is built.
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::Internal(anyhow::anyhow!(problem::PANIC_CAUSE)).into_response()
                }))
                .layer(middleware::from_fn(move |req, next| metrics::track(service, req, next))),
        )
}

async fn with_timeout(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}
