//! Reading the audit log: platform admins read all of it and verify its hash chain; a brand's
//! owners read the brand's own rows.

use axum::{
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
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
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut conn = state.db().acquire().await?;
    let records = audit::list(&mut conn, None, page.before, page.limit()?).await?;
    if !shared::pages::wants_html(&headers) {
        return Ok(Json(records).into_response());
    }
    // The chain is verified from its start on every view: fine for the log's size today, and
    // the page says how many rows it checked.
    let verification = audit::verify(&mut conn).await?;
    let body = log_page("/audit", &records, Some(&verification), true);
    Ok(shared::pages::staff_page("Audit log", &[], &crate::pages::platform_nav(), body))
}

/// A page of the log: the chain's verification (the whole log only), the rows newest first with
/// what changed, and a link to older rows.
fn log_page(path: &str, records: &[Record], verification: Option<&Verification>, brands: bool) -> maud::Markup {
    let json = |value: &Option<serde_json::Value>| value.as_ref().map(serde_json::Value::to_string).unwrap_or_default();
    maud::html! {
        h1 { "Audit log" }
        @if let Some(v) = verification {
            section.card aria-labelledby="chain-title" {
                h2 #chain-title { "Hash chain" }
                @match v.first_broken {
                    None => p.status data-kind="good" #chain { "Intact: " (v.rows) " rows checked." },
                    Some(row) => p.status data-kind="bad" #chain {
                        "Broken at row " (row) ": " (v.reason.as_deref().unwrap_or("unknown")) ". " (v.rows) " rows checked."
                    },
                }
                @if let Some(head) = &v.head { p { "Head: " span.hash { (head) } } }
            }
        }
        section.card aria-labelledby="rows-title" {
            h2 #rows-title { "Newest first" }
            @if records.is_empty() { p.muted { "Nothing recorded yet." } } @else {
                div.table { table #audit {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Who" }
                        @if brands { th scope="col" { "Brand" } }
                        th scope="col" { "What" } th scope="col" { "On" } th scope="col" { "Change" } th scope="col" { "From" }
                    } }
                    tbody { @for r in records { tr {
                        td.num { (r.id) } td { (crate::pages::when(r.at)) } td { (r.actor) }
                        @if brands { td { (r.brand_id.map(|b| b.to_string()).unwrap_or_default()) } }
                        td { (r.action) } td { (r.target) }
                        td.hash { @if r.before.is_some() { "before " (json(&r.before)) br; } @if r.after.is_some() { "after " (json(&r.after)) } }
                        td { (r.ip.as_deref().unwrap_or_default()) }
                    } } }
                } }
            }
            @if let Some(last) = records.last() {
                p { a href=(format!("{path}?before={}", last.id)) { "Older rows" } }
            }
        }
    }
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
    headers: HeaderMap,
) -> ApiResult<Response> {
    let brand = caller.brand()?.id;
    let mut conn = state.db().acquire().await?;
    let records = audit::list(&mut conn, Some(brand), page.before, page.limit()?).await?;
    if !shared::pages::wants_html(&headers) {
        return Ok(Json(records).into_response());
    }
    let body = log_page(&format!("/brands/{brand}/audit"), &records, None, false);
    Ok(crate::pages::brand_page(&state, brand.get(), "Audit log", body))
}
