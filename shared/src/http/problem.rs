//! RFC 9457 problem details: the one error type every handler returns.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The cause a handler's caught panic is answered with (the 500 of `CatchPanicLayer`).
pub(crate) const PANIC_CAUSE: &str = "handler panicked";

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What went wrong with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer-ish path of the field, e.g. `items[0].price`.
    pub field: String,
    /// A sentence for the person who sent it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Collects field errors so one 422 names every problem of a request.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Notes that `field` is unacceptable, and why.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Whether nothing was noted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was noted, else the 422 naming every field.
    pub fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::Validation(self.0)) }
    }
}

/// An RFC 9457 problem document as sent on the wire.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type; stable, documented, relative to the API.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the problem type; the same for every occurrence.
    pub title: String,
    /// The HTTP status code, repeated for clients that lose headers.
    pub status: u16,
    /// What happened this time, for a human.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Stable machine-readable code (the last segment of `type`).
    pub code: String,
    /// Per-field validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra members specific to the problem type (e.g. readiness checks).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Everything a handler can fail with. Each variant maps to exactly one status and problem type.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request body or parameters could not be read at all (syntax, encoding).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request was read but one or more fields are unacceptable.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No credentials, or credentials that are not valid.
    #[error("unauthenticated")]
    Unauthenticated,
    /// Valid credentials without the permission the route needs.
    #[error("forbidden")]
    Forbidden,
    /// The resource does not exist (or is not visible to the caller).
    #[error("not found: {0}")]
    NotFound(String),
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with the current state (duplicate, wrong state).
    #[error("conflict ({code}): {detail}")]
    Conflict { code: ConflictCode, detail: String },
    /// The body is larger than the route accepts.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body is not in a media type the route accepts.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Too many requests; try again after the given number of seconds.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (database, chain, payment provider) is down; `checks` says which.
    #[error("dependency unavailable: {detail}")]
    Unavailable { detail: String, checks: Option<serde_json::Value> },
    /// The request took longer than the configured timeout.
    #[error("request timed out")]
    Timeout,
    /// A bug or an unexpected failure; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The stable, machine-readable codes of `409 Conflict` problems (`code` in the body): one list,
/// so clients can rely on them and no handler invents a spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display, strum::VariantArray)]
#[strum(serialize_all = "kebab-case")]
pub enum ConflictCode {
    /// `address-denied`.
    AddressDenied,
    /// `already-a-member`.
    AlreadyAMember,
    /// `already-redeemed`.
    AlreadyRedeemed,
    /// `batch-generating`.
    BatchGenerating,
    /// `campaign-archived`.
    CampaignArchived,
    /// `campaign-deployed`.
    CampaignDeployed,
    /// `cannot-fund`.
    CannotFund,
    /// `card-payment-refused`.
    CardPaymentRefused,
    /// `code-expired`.
    CodeExpired,
    /// `code-revoked`.
    CodeRevoked,
    /// `constraint-violated`.
    ConstraintViolated,
    /// `delivery-pending`.
    DeliveryPending,
    /// `deployment-unavailable`.
    DeploymentUnavailable,
    /// `email-taken`.
    EmailTaken,
    /// `endpoint-disabled`.
    EndpointDisabled,
    /// `idempotency-key-reused`.
    IdempotencyKeyReused,
    /// `idempotency-race`.
    IdempotencyRace,
    /// `invalid-reset-token`.
    InvalidResetToken,
    /// `invalid-transition`.
    InvalidTransition,
    /// `kyc-approved`.
    KycApproved,
    /// `kyc-awaiting-review`.
    KycAwaitingReview,
    /// `kyc-claimed`.
    KycClaimed,
    /// `kyc-no-draft`.
    KycNoDraft,
    /// `kyc-state`.
    KycState,
    /// `last-owner`.
    LastOwner,
    /// `not-a-perk`.
    NotAPerk,
    /// `not-the-holder`.
    NotTheHolder,
    /// `not-on-sale`.
    NotOnSale,
    /// `not-payable`.
    NotPayable,
    /// `not-refundable`.
    NotRefundable,
    /// `reward-accruing`.
    RewardAccruing,
    /// `reward-unavailable`.
    RewardUnavailable,
    /// `slug-taken`.
    SlugTaken,
    /// `sold-out`.
    SoldOut,
    /// `wallet-limit`.
    WalletLimit,
}

impl ConflictCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A transition the machine's table does not allow is a conflict with the entity's state; a
/// missing entity is a 404; anything else is the platform's failure.
impl From<crate::workflow::WorkflowError> for ApiError {
    fn from(e: crate::workflow::WorkflowError) -> Self {
        use crate::workflow::WorkflowError as W;
        match e {
            W::InvalidTransition { from, event, .. } => ApiError::Conflict {
                code: ConflictCode::InvalidTransition,
                detail: format!("`{event}` is not possible while it is {from}"),
            },
            W::NotFound { machine, id } => ApiError::NotFound(format!("no {machine} {id}")),
            W::Database(e) => e.into(),
            other @ W::UnknownState { .. } => ApiError::Internal(other.into()),
        }
    }
}

/// A business key reused for another call is the client's conflict; the rest is the platform's.
impl From<crate::chain::txqueue::TxQueueError> for ApiError {
    fn from(e: crate::chain::txqueue::TxQueueError) -> Self {
        use crate::chain::txqueue::TxQueueError as Q;
        match e {
            Q::KeyReused(key) => ApiError::Conflict {
                code: ConflictCode::IdempotencyKeyReused,
                detail: format!("`{key}` was used for another request"),
            },
            Q::Database(e) => e.into(),
            Q::Workflow(e) => e.into(),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// Money the platform stored that does not read back (an unknown currency, an overflow in its
/// own arithmetic) is the platform's failure: requests are bounded before money is computed.
impl From<crate::money::MoneyError> for ApiError {
    fn from(e: crate::money::MoneyError) -> Self {
        ApiError::Internal(e.into())
    }
}

/// Turns a named constraint's refusal into the client error it means, by constraint name (the
/// database settles races a check beforehand could not): `.on_constraint("campaigns_slug_key",
/// || ApiError::validation("slug", "is taken"))`. Any other database error converts as usual.
pub trait OnConstraint<T> {
    fn on_constraint(self, constraint: &str, error: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T> OnConstraint<T> for Result<T, sqlx::Error> {
    fn on_constraint(self, constraint: &str, error: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some(constraint) => error(),
            _ => e.into(),
        })
    }
}

impl From<sqlx::Error> for ApiError {
    /// The database's refusals of what a request asked are client errors, by SQLSTATE class: a
    /// constraint (23: unique, foreign key, check) is a 409, bad data (22: out of range, invalid
    /// text) or a value too large for an index (54000) a 422. Handlers check first and name the
    /// field; reaching here means a check is missing, so it is logged — never a 500 for the client.
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
                ApiError::Unavailable { detail: "the database is unavailable".into(), checks: None }
            }
            sqlx::Error::Database(db) => {
                let class = db.code().map(|code| code.into_owned()).unwrap_or_default();
                let constraint = db.constraint().unwrap_or("a rule of the data").to_owned();
                match class.get(..2) {
                    Some("23") => {
                        tracing::warn!(sqlstate = %class, %constraint, "a constraint refused a request no check caught");
                        ApiError::Conflict {
                            code: crate::http::ConflictCode::ConstraintViolated,
                            detail: format!("the request conflicts with the stored data ({constraint})"),
                        }
                    }
                    Some("22") | Some("54") => {
                        tracing::warn!(sqlstate = %class, error = %db.message(), "the database refused a value no check caught");
                        ApiError::Validation(vec![FieldError::new(
                            "body",
                            "a value is out of the range or size the platform can store",
                        )])
                    }
                    _ => ApiError::Internal(sqlx::Error::Database(db).into()),
                }
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// The status, stable code and title of this error. One exhaustive match: a new variant
    /// cannot be added without deciding how it looks on the wire.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "The request could not be read"),
            ApiError::Validation(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation", "The request has invalid fields")
            }
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", "Authentication is required"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code.as_str(), "Conflict with the current state"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            }
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests"),
            ApiError::Unavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "A dependency is unavailable")
            }
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout", "The request timed out"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error"),
        }
    }

    /// The problem document this error is sent as.
    pub fn to_problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let mut problem = Problem {
            type_uri: format!("/problems/{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            code: code.to_owned(),
            errors: Vec::new(),
            extensions: None,
        };
        match self {
            ApiError::BadRequest(detail)
            | ApiError::NotFound(detail)
            | ApiError::UnsupportedMediaType(detail)
            | ApiError::Conflict { detail, .. } => problem.detail = Some(detail.clone()),
            ApiError::Validation(errors) => {
                problem.detail = Some(match errors.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    many => format!("{} fields are invalid", many.len()),
                });
                problem.errors = errors.clone();
            }
            ApiError::RateLimited { retry_after_secs } => {
                problem.detail = Some(format!("try again in {retry_after_secs} s"));
            }
            ApiError::Unavailable { detail, checks } => {
                problem.detail = Some(detail.clone());
                if let Some(checks) = checks {
                    let mut ext = serde_json::Map::new();
                    ext.insert("checks".into(), checks.clone());
                    problem.extensions = Some(ext);
                }
            }
            ApiError::Unauthenticated
            | ApiError::Forbidden
            | ApiError::MethodNotAllowed
            | ApiError::PayloadTooLarge
            | ApiError::Timeout
            | ApiError::Internal(_) => {}
        }
        problem
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        match &self {
            // The cause is logged and reported to Sentry (when configured) once, here; the client
            // gets the generic body. The report carries the cause's chain only: no request body,
            // headers or parameters. A handler's panic (`CatchPanicLayer` in `super`) is already
            // reported by Sentry's panic hook, so it is not reported twice.
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "request failed");
                if cause.to_string() != PANIC_CAUSE {
                    sentry::capture_message(&format!("internal server error: {cause:#}"), sentry::Level::Error);
                }
            }
            ApiError::Unavailable { detail, .. } => {
                tracing::warn!(%detail, "dependency unavailable")
            }
            _ => tracing::debug!(code = %problem.code, "request refused"),
        }
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            // RFC 6750 §3: say which scheme is expected.
            ApiError::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="brandmint""#));
            }
            _ => {}
        }
        response
    }
}

/// Documents every response whose body is a [`Problem`] as `application/problem+json`, the media
/// type it is sent with. Routes declare their errors as `(status = 404, body = Problem)` (with a
/// description of when it happens); the media type is stated once, here, for every service.
///
/// Then adds the refusals the shared stack answers before or around any handler, on every
/// operation they can reach and that does not declare the status itself: 401 and 403 from the
/// permission wall (operations with a security requirement), 404 for a path parameter naming
/// nothing (a malformed id included, see [`super::extract::Path`]), 400, 415 and 422 from the JSON
/// body extractor, 413 from the body limit, 422 from the query extractor, 429 from the per-IP
/// budget and 503 from the request timeout. So a client, and the API fuzzing in CI, can rely on
/// the document listing every status an operation answers.
pub fn document_problems(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        Ref, RefOr,
        path::ParameterIn,
        response::{Response, ResponseBuilder},
    };
    let name = <Problem as ToSchema>::name();
    let problem = format!("#/components/schemas/{name}");
    let refusal = |description: &str| -> RefOr<Response> {
        let content = utoipa::openapi::ContentBuilder::new().schema(Some(Ref::new(problem.clone()))).build();
        ResponseBuilder::new().description(description).content(PROBLEM_JSON, content).build().into()
    };
    for item in api.paths.paths.values_mut() {
        for operation in crate::auth::operations(item) {
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else { continue };
                let is_problem = response
                    .content
                    .get("application/json")
                    .is_some_and(|content| matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location == problem));
                if is_problem && let Some(content) = response.content.shift_remove("application/json") {
                    response.content.insert(PROBLEM_JSON.to_owned(), content);
                }
            }

            let parameters = operation.parameters.as_deref().unwrap_or_default();
            let has = |place: ParameterIn| parameters.iter().any(|p| p.parameter_in == place);
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let body = operation.request_body.as_ref();
            let json_body = body.is_some_and(|b| b.content.keys().any(|t| t == "application/json"));
            let mut shared: Vec<(&str, &str)> = Vec::new();
            if secured {
                shared.push(("401", "No credentials, or credentials that are not valid (any more)"));
                shared.push(("403", "The caller does not hold the permission this operation needs"));
            }
            if has(ParameterIn::Path) {
                shared.push(("404", "A path parameter names nothing the caller may see (or is malformed)"));
            }
            if json_body {
                shared.push(("400", "The body is not valid JSON"));
                shared.push(("415", "The body is not of type application/json"));
            }
            if json_body || has(ParameterIn::Query) {
                shared.push(("422", "A field or query parameter is invalid; `errors` names each"));
            }
            if body.is_some() {
                shared.push(("413", "The body is larger than the operation accepts"));
            }
            shared.push(("429", "Too many requests from this address; see Retry-After"));
            shared.push(("503", "A dependency is unavailable, or the request timed out"));
            for (status, description) in shared {
                operation.responses.responses.entry(status.to_owned()).or_insert_with(|| refusal(description));
            }
        }
    }
    // The problem schemas, for a service none of whose routes names them itself.
    let mut schemas = vec![(name.into_owned(), <Problem as utoipa::PartialSchema>::schema())];
    <Problem as ToSchema>::schemas(&mut schemas);
    let components = api.components.get_or_insert_with(Default::default);
    for (name, schema) in schemas {
        components.schemas.entry(name).or_insert(schema);
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    async fn render(error: ApiError) -> (StatusCode, Option<String>, serde_json::Value, axum::http::HeaderMap) {
        let response = error.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, serde_json::from_slice(&body).unwrap(), headers)
    }

    #[tokio::test]
    async fn validation_errors_render_as_problem_json_naming_each_field() {
        let (status, content_type, body, _) = render(ApiError::Validation(vec![
            FieldError::new("royalty_bps", "must be at most 10000"),
            FieldError::new("supply", "must be at least 1"),
        ]))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(content_type.as_deref(), Some(PROBLEM_JSON));
        assert_eq!(body["type"], "/problems/validation");
        assert_eq!(body["status"], 422);
        assert_eq!(body["code"], "validation");
        assert_eq!(body["errors"][0]["field"], "royalty_bps");
        assert_eq!(body["errors"][1]["message"], "must be at least 1");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let (status, _, body, _) =
            render(ApiError::Internal(anyhow::anyhow!("password=hunter2 connection reset"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("hunter2"));
        assert!(body.get("detail").is_none());
    }

    #[tokio::test]
    async fn rate_limits_carry_retry_after() {
        let (status, _, body, headers) = render(ApiError::RateLimited { retry_after_secs: 42 }).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "42");
        assert_eq!(body["code"], "rate-limited");
    }

    #[tokio::test]
    async fn unavailable_carries_the_dependency_checks() {
        let checks = serde_json::json!({"database": {"status": "down"}});
        let (status, _, body, _) =
            render(ApiError::Unavailable { detail: "database is down".into(), checks: Some(checks) }).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["database"]["status"], "down");
        assert_eq!(body["detail"], "database is down");
    }

    #[tokio::test]
    async fn conflicts_use_their_own_stable_code() {
        let (status, _, body, _) =
            render(ApiError::Conflict { code: crate::http::ConflictCode::SlugTaken, detail: "slug `x` exists".into() })
                .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["type"], "/problems/slug-taken");
        assert_eq!(body["code"], "slug-taken");
    }
}
