//! Reading the audit log: platform admins read all of it and verify its hash chain; a brand's
//! owners read the brand's own rows.

use axum::extract::State;
use serde::Deserialize;
use shared::{
    AppState,
    audit::{self, Record, Verification},
    auth::{Caller, Permission, require},
    http::{
        ApiError, ApiResult, FieldError,
        extract::{Json, Query},
    },
};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::AuditReadAll, routes!(list_all)))
        .routes(require(Permission::AuditReadAll, routes!(verify)))
        .routes(require(Permission::AuditRead, routes!(list_brand)))
}

/// A page of the log, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    /// Only rows with an id below this (the last id of the previous page).
    before: Option<i64>,
    /// At most this many rows (1–500, default 100).
    limit: Option<i64>,
}

impl Page {
    fn limit(&self) -> ApiResult<i64> {
        match self.limit.unwrap_or(100) {
            limit @ 1..=500 => Ok(limit),
            _ => Err(ApiError::Validation(vec![FieldError::new("limit", "must be between 1 and 500")])),
        }
    }
}

/// The whole audit log (platform admins).
#[utoipa::path(get, path = "/audit", tag = "audit", params(Page), responses((status = 200, body = Vec<Record>)))]
#[tracing::instrument(skip_all)]
async fn list_all(
    State(state): State<AppState>,
    _caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<Record>>> {
    let mut conn = state.db().acquire().await?;
    Ok(Json(audit::list(&mut conn, None, page.before, page.limit()?).await?))
}

/// Recomputes the hash chain and reports the first broken row, if any.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", responses((status = 200, body = Verification)))]
#[tracing::instrument(skip_all)]
async fn verify(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Verification>> {
    let mut conn = state.db().acquire().await?;
    Ok(Json(audit::verify(&mut conn).await?))
}

/// The brand's own rows.
#[utoipa::path(get, path = "/brands/{brand_id}/audit", tag = "audit", params(("brand_id" = i64, Path), Page),
    responses((status = 200, body = Vec<Record>)))]
#[tracing::instrument(skip_all)]
async fn list_brand(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<Record>>> {
    let mut conn = state.db().acquire().await?;
    Ok(Json(audit::list(&mut conn, Some(caller.brand()?.id), page.before, page.limit()?).await?))
}
