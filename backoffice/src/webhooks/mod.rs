//! Brand webhooks: a brand registers endpoints for event types; events from the outbox are
//! fanned out into one delivery per endpoint ([`fanout`]) and sent, signed the Standard
//! Webhooks way, with retries ([`sender`]). Here: the brand's API — endpoints, the secret
//! (shown once, rotated with a grace period), the delivery log, replays and test events.

mod fanout;
mod page;
mod sender;
mod standard;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{BrandId, Caller, Permission, require},
    http::{
        ApiError, ApiResult, Problem,
        extract::{Json, Path},
    },
    workflow::{NewEvent, outbox},
};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use self::standard::{EVENT_TYPES, ROTATION_GRACE, Secret, TEST_EVENT, TargetPolicy};
use crate::config::{BackofficeConfig, WebhooksConfig};

pub(crate) use fanout::Fanout;
pub(crate) use sender::Sender;

/// The most deliveries one log page shows (newest first).
const LOG_PAGE: i64 = 100;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::WebhooksManage, routes!(create_endpoint, list_endpoints)))
        .routes(require(Permission::WebhooksManage, routes!(get_endpoint, update_endpoint, delete_endpoint)))
        .routes(require(Permission::WebhooksManage, routes!(rotate_secret)))
        .routes(require(Permission::WebhooksManage, routes!(send_test_event)))
        .routes(require(Permission::WebhooksManage, routes!(list_deliveries)))
        .routes(require(Permission::WebhooksManage, routes!(replay_delivery)))
}

/// Which targets this deployment accepts.
pub(crate) fn policy(config: &WebhooksConfig) -> TargetPolicy {
    TargetPolicy { allow_private: config.allow_private_targets, require_https: config.require_https }
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Endpoint {
    id: i64,
    url: String,
    description: String,
    event_types: Vec<String>,
    enabled: bool,
    /// After a rotation: until when deliveries are also signed with the previous secret.
    previous_secret_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// An endpoint to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewEndpoint {
    /// `https://` (plain http only in local development); must resolve to public addresses.
    url: String,
    /// At least one of the brand event types (`order.created`, `deployment.failed`, …).
    event_types: Vec<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointChange {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    description: Option<String>,
    enabled: Option<bool>,
}

/// A registered endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedEndpoint {
    endpoint: Endpoint,
    /// `whsec_<base64>`: verify `webhook-signature` with it. Store it now: it cannot be shown again.
    secret: String,
}

/// A new signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RotatedSecret {
    secret: String,
    /// Until then deliveries carry signatures by both the new and the previous secret.
    previous_secret_expires_at: DateTime<Utc>,
}

/// A test event queued for an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuedTest {
    event_id: i64,
}

/// One message to an endpoint and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Delivery {
    id: i64,
    event_type: String,
    /// The `webhook-id` header: the same on every retry and replay.
    webhook_id: String,
    /// `pending`, `succeeded`, `failed` (attempts exhausted) or `cancelled` (endpoint gone).
    status: String,
    /// Attempts in the current round (a replay starts a new one).
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    attempt_log: Vec<Attempt>,
}

/// One attempt to deliver.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Attempt {
    attempt: i32,
    attempted_at: DateTime<Utc>,
    duration_ms: i32,
    /// The response status; none when no response came (connection refused, timeout, refused target).
    status_code: Option<i32>,
    error: Option<String>,
    /// The start of the response body.
    response_body: Option<String>,
}

#[derive(Deserialize)]
struct EndpointPath {
    endpoint_id: i64,
}

#[derive(Deserialize)]
struct DeliveryPath {
    endpoint_id: i64,
    delivery_id: i64,
}

/// Parses and checks a target URL (scheme, credentials, every resolved address).
async fn check_url(config: &WebhooksConfig, raw: &str) -> ApiResult<String> {
    let raw = raw.trim();
    if raw.len() > 2048 {
        return Err(ApiError::validation("url", "must be at most 2048 characters"));
    }
    let url = reqwest::Url::parse(raw).map_err(|_| ApiError::validation("url", "must be an absolute https:// URL"))?;
    policy(config).check(&url).await.map_err(|e| ApiError::validation("url", e.to_string()))?;
    Ok(url.to_string())
}

/// At least one known event type; duplicates dropped, in the catalogue's order.
fn check_event_types(types: &[String]) -> ApiResult<Vec<String>> {
    if let Some(unknown) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(ApiError::validation(
            "event_types",
            format!("`{unknown}` is not one of {}", EVENT_TYPES.join(", ")),
        ));
    }
    let chosen: Vec<String> =
        EVENT_TYPES.iter().filter(|t| types.iter().any(|chosen| chosen == *t)).map(|t| (*t).to_owned()).collect();
    if chosen.is_empty() {
        return Err(ApiError::validation("event_types", "must name at least one event type"));
    }
    Ok(chosen)
}

fn check_description(description: &str) -> ApiResult<String> {
    let description = description.trim();
    if description.chars().count() > 500 {
        return Err(ApiError::validation("description", "must be at most 500 characters"));
    }
    Ok(description.to_owned())
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such webhook endpoint".into())
}

/// A live (not deleted) endpoint of the brand, locked until the caller's transaction ends
/// (`NO KEY UPDATE`: concurrent changes wait, deliveries referencing it do not).
async fn endpoint(conn: &mut PgConnection, brand: BrandId, id: i64) -> ApiResult<Endpoint> {
    sqlx::query_as!(
        Endpoint,
        r#"SELECT id, url, description, event_types, enabled, created_at, updated_at,
                  CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
                      AS "previous_secret_expires_at?"
           FROM webhook_endpoints WHERE brand_id = $1 AND id = $2 AND deleted_at IS NULL
           FOR NO KEY UPDATE"#,
        brand.get(),
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(not_found)
}

/// Registers an endpoint; the answer holds its signing secret, this once.
#[utoipa::path(post, path = "/brands/{brand_id}/webhooks", tag = "webhooks", request_body = NewEndpoint,
    params(("brand_id" = i64, Path)),
    responses(
        (status = 201, body = CreatedEndpoint),
        (status = 422, description = "Refused URL or unknown event type", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    let brand = caller.brand()?.id;
    let url = check_url(&state.part::<BackofficeConfig>()?.webhooks, &body.url).await?;
    let event_types = check_event_types(&body.event_types)?;
    let description = check_description(&body.description)?;
    let secret = Secret::generate();
    let mut tx = state.db().begin().await?;
    let endpoint = sqlx::query_as!(
        Endpoint,
        r#"INSERT INTO webhook_endpoints (brand_id, url, description, event_types, enabled, secret)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, url, description, event_types, enabled, created_at, updated_at,
                     NULL::timestamptz AS "previous_secret_expires_at?""#,
        brand.get(),
        url,
        description,
        &event_types,
        body.enabled,
        secret.expose()
    )
    .fetch_one(&mut *tx)
    .await?;
    let entry = Entry::new("webhook.created", format!("webhook:{}", endpoint.id)).after(&endpoint);
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(CreatedEndpoint { endpoint, secret: secret.expose() })))
}

/// The brand's endpoints.
#[utoipa::path(get, path = "/brands/{brand_id}/webhooks", tag = "webhooks", params(("brand_id" = i64, Path)),
    responses((status = 200, body = Vec<Endpoint>)))]
#[tracing::instrument(skip_all)]
async fn list_endpoints(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let endpoints = sqlx::query_as!(
        Endpoint,
        r#"SELECT id, url, description, event_types, enabled, created_at, updated_at,
                  CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
                      AS "previous_secret_expires_at?"
           FROM webhook_endpoints WHERE brand_id = $1 AND deleted_at IS NULL ORDER BY id"#,
        caller.brand()?.id.get()
    )
    .fetch_all(state.db())
    .await?;
    match shared::pages::wants_html(&headers) {
        true => Ok(page::endpoints(&state, caller.brand()?.id.get(), &endpoints)),
        false => Ok(Json(endpoints).into_response()),
    }
}

/// One endpoint.
#[utoipa::path(get, path = "/brands/{brand_id}/webhooks/{endpoint_id}", tag = "webhooks",
    params(("brand_id" = i64, Path), ("endpoint_id" = i64, Path)),
    responses((status = 200, body = Endpoint), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<EndpointPath>,
) -> ApiResult<Json<Endpoint>> {
    let mut tx = state.db().begin().await?;
    let endpoint = endpoint(&mut tx, caller.brand()?.id, path.endpoint_id).await?;
    tx.commit().await?;
    Ok(Json(endpoint))
}

/// Changes an endpoint's URL, event types, description or whether it is enabled.
#[utoipa::path(patch, path = "/brands/{brand_id}/webhooks/{endpoint_id}", tag = "webhooks",
    request_body = EndpointChange, params(("brand_id" = i64, Path), ("endpoint_id" = i64, Path)),
    responses(
        (status = 200, body = Endpoint),
        (status = 404, body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<EndpointPath>,
    Json(body): Json<EndpointChange>,
) -> ApiResult<Json<Endpoint>> {
    let brand = caller.brand()?.id;
    let url = match &body.url {
        Some(url) => Some(check_url(&state.part::<BackofficeConfig>()?.webhooks, url).await?),
        None => None,
    };
    let event_types = body.event_types.as_deref().map(check_event_types).transpose()?;
    let description = body.description.as_deref().map(check_description).transpose()?;
    let mut tx = state.db().begin().await?;
    let before = endpoint(&mut tx, brand, path.endpoint_id).await?;
    let after = sqlx::query_as!(
        Endpoint,
        r#"UPDATE webhook_endpoints
           SET url = COALESCE($3, url), event_types = COALESCE($4, event_types),
               description = COALESCE($5, description), enabled = COALESCE($6, enabled), updated_at = now()
           WHERE brand_id = $1 AND id = $2
           RETURNING id, url, description, event_types, enabled, created_at, updated_at,
                     CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
                         AS "previous_secret_expires_at?""#,
        brand.get(),
        path.endpoint_id,
        url,
        event_types.as_deref(),
        description,
        body.enabled
    )
    .fetch_one(&mut *tx)
    .await?;
    let entry = Entry::new("webhook.updated", format!("webhook:{}", after.id)).before(&before).after(&after);
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// Deletes an endpoint: nothing more is sent to it (pending deliveries are cancelled); its
/// delivery log is kept.
#[utoipa::path(delete, path = "/brands/{brand_id}/webhooks/{endpoint_id}", tag = "webhooks",
    params(("brand_id" = i64, Path), ("endpoint_id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<EndpointPath>,
) -> ApiResult<StatusCode> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    let before = endpoint(&mut tx, brand, path.endpoint_id).await?;
    // The secrets go with it: nothing will be signed for this endpoint again.
    sqlx::query!(
        "UPDATE webhook_endpoints
         SET deleted_at = now(), updated_at = now(), enabled = false, secret = '',
             previous_secret = NULL, previous_secret_expires_at = NULL
         WHERE brand_id = $1 AND id = $2",
        brand.get(),
        path.endpoint_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE webhook_deliveries SET status = 'cancelled', last_error = 'endpoint deleted'
         WHERE brand_id = $1 AND endpoint_id = $2 AND status = 'pending'",
        brand.get(),
        path.endpoint_id
    )
    .execute(&mut *tx)
    .await?;
    let entry = Entry::new("webhook.deleted", format!("webhook:{}", before.id)).before(&before);
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new signing secret. For a grace period (24 hours) deliveries carry signatures by
/// both the new and the previous secret, so receivers can switch without losing events.
#[utoipa::path(post, path = "/brands/{brand_id}/webhooks/{endpoint_id}/rotate-secret", tag = "webhooks",
    params(("brand_id" = i64, Path), ("endpoint_id" = i64, Path)),
    responses((status = 200, body = RotatedSecret), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<EndpointPath>,
) -> ApiResult<Json<RotatedSecret>> {
    let brand = caller.brand()?.id;
    let secret = Secret::generate();
    let mut tx = state.db().begin().await?;
    endpoint(&mut tx, brand, path.endpoint_id).await?;
    let expires_at = sqlx::query_scalar!(
        r#"UPDATE webhook_endpoints
           SET previous_secret = secret, secret = $3, updated_at = now(),
               previous_secret_expires_at = now() + make_interval(secs => $4)
           WHERE brand_id = $1 AND id = $2
           RETURNING previous_secret_expires_at AS "expires_at!""#,
        brand.get(),
        path.endpoint_id,
        secret.expose(),
        ROTATION_GRACE.as_secs_f64()
    )
    .fetch_one(&mut *tx)
    .await?;
    let entry = Entry::new("webhook.secret-rotated", format!("webhook:{}", path.endpoint_id))
        .after(json!({ "previous_secret_expires_at": expires_at }));
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(Json(RotatedSecret { secret: secret.expose(), previous_secret_expires_at: expires_at }))
}

/// Sends the endpoint a `webhook.test` event (through the outbox, like every other event).
#[utoipa::path(post, path = "/brands/{brand_id}/webhooks/{endpoint_id}/test", tag = "webhooks",
    params(("brand_id" = i64, Path), ("endpoint_id" = i64, Path)),
    responses(
        (status = 202, body = QueuedTest),
        (status = 404, body = Problem),
        (status = 409, description = "The endpoint is disabled", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn send_test_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<EndpointPath>,
) -> ApiResult<(StatusCode, Json<QueuedTest>)> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    if !endpoint(&mut tx, brand, path.endpoint_id).await?.enabled {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::EndpointDisabled,
            detail: "enable the endpoint first".into(),
        });
    }
    let event = NewEvent {
        event_type: TEST_EVENT.to_owned(),
        aggregate_type: "webhook_endpoint",
        aggregate_id: path.endpoint_id,
        payload: json!({ "brand_id": brand, "endpoint_id": path.endpoint_id }),
        correlation_id: caller.meta.request_id.clone(),
    };
    let event_id = outbox::append(&mut tx, event).await?;
    audit::record(&mut tx, &caller, Entry::new("webhook.tested", format!("webhook:{}", path.endpoint_id))).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(QueuedTest { event_id })))
}

/// The endpoint's latest deliveries (newest first), each with its attempts.
#[utoipa::path(get, path = "/brands/{brand_id}/webhooks/{endpoint_id}/deliveries", tag = "webhooks",
    params(("brand_id" = i64, Path), ("endpoint_id" = i64, Path)),
    responses((status = 200, body = Vec<Delivery>), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<EndpointPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let brand = caller.brand()?.id;
    let mut conn = state.db().acquire().await?;
    let known = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE brand_id = $1 AND id = $2) AS "known!""#,
        brand.get(),
        path.endpoint_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !known {
        return Err(not_found());
    }
    let log = deliveries(&mut conn, brand, path.endpoint_id, None).await?;
    if !shared::pages::wants_html(&headers) {
        return Ok(Json(log).into_response());
    }
    let mut tx = state.db().begin().await?;
    let endpoint = endpoint(&mut tx, brand, path.endpoint_id).await?;
    tx.rollback().await?;
    Ok(page::deliveries(&state, brand.get(), &endpoint, &log))
}

/// Sends a delivery again, with the same `webhook-id` and body and a fresh attempt budget.
#[utoipa::path(post, path = "/brands/{brand_id}/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    params(("brand_id" = i64, Path), ("endpoint_id" = i64, Path), ("delivery_id" = i64, Path)),
    responses(
        (status = 202, body = Delivery),
        (status = 404, body = Problem),
        (status = 409, description = "Still being delivered, or the endpoint is disabled", body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(delivery.id = path.delivery_id))]
async fn replay_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<DeliveryPath>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    if !endpoint(&mut tx, brand, path.endpoint_id).await?.enabled {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::EndpointDisabled,
            detail: "enable the endpoint first".into(),
        });
    }
    let status = sqlx::query_scalar!(
        "SELECT status FROM webhook_deliveries WHERE brand_id = $1 AND endpoint_id = $2 AND id = $3
         FOR NO KEY UPDATE",
        brand.get(),
        path.endpoint_id,
        path.delivery_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound("no such delivery".into()))?;
    if status == "pending" {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::DeliveryPending,
            detail: "the delivery is still being sent".into(),
        });
    }
    sqlx::query!(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
         WHERE id = $1",
        path.delivery_id
    )
    .execute(&mut *tx)
    .await?;
    let entry = Entry::new("webhook.delivery-replayed", format!("webhook-delivery:{}", path.delivery_id))
        .before(json!({ "status": status }));
    audit::record(&mut tx, &caller, entry).await?;
    let delivery =
        deliveries(&mut tx, brand, path.endpoint_id, Some(path.delivery_id)).await?.pop().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("delivery {} vanished in its own transaction", path.delivery_id))
        })?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

/// An endpoint's deliveries with their attempts, newest first (one page, or one delivery).
async fn deliveries(
    conn: &mut PgConnection,
    brand: BrandId,
    endpoint: i64,
    only: Option<i64>,
) -> sqlx::Result<Vec<Delivery>> {
    let rows = sqlx::query!(
        r#"SELECT id, event_type, message_id, status, attempts, last_status_code, last_error, created_at,
                  delivered_at, CASE WHEN status = 'pending' THEN next_attempt_at END AS "next_attempt_at?"
           FROM webhook_deliveries
           WHERE brand_id = $1 AND endpoint_id = $2 AND ($3::bigint IS NULL OR id = $3)
           ORDER BY id DESC LIMIT $4"#,
        brand.get(),
        endpoint,
        only,
        LOG_PAGE
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let attempts = sqlx::query!(
        "SELECT delivery_id, attempt, attempted_at, duration_ms, status_code, error, response_body
         FROM webhook_attempts WHERE brand_id = $1 AND delivery_id = ANY($2) ORDER BY delivery_id, attempt",
        brand.get(),
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Delivery {
            attempt_log: attempts
                .iter()
                .filter(|a| a.delivery_id == r.id)
                .map(|a| Attempt {
                    attempt: a.attempt,
                    attempted_at: a.attempted_at,
                    duration_ms: a.duration_ms,
                    status_code: a.status_code,
                    error: a.error.clone(),
                    response_body: a.response_body.clone(),
                })
                .collect(),
            id: r.id,
            event_type: r.event_type,
            webhook_id: r.message_id,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
        })
        .collect())
}
