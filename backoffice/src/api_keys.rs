//! A brand's API keys, for its own servers: created with a subset of the brand's permissions,
//! shown once, listed by prefix, revoked at will.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{
        Caller, Permission,
        api_keys::{self, ApiKey},
        require,
    },
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Json, Path},
    },
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::brands::check_name;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::ApiKeysManage, routes!(create_key, list_keys)))
        .routes(require(Permission::ApiKeysManage, routes!(revoke_key)))
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    name: String,
    /// Brand permissions the key carries (not `members-manage` or `api-keys-manage`).
    permissions: Vec<Permission>,
}

/// A created key with its token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedKey {
    key: ApiKey,
    /// `Authorization: Bearer <token>`. Store it now: it cannot be shown again.
    token: String,
}

#[derive(Deserialize)]
struct KeyPath {
    key_id: i64,
}

/// Creates an API key.
#[utoipa::path(post, path = "/brands/{brand_id}/api-keys", tag = "api-keys", request_body = NewKey,
    params(("brand_id" = i64, Path)),
    responses((status = 201, body = CreatedKey), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let brand = caller.brand()?.id;
    let name = check_name("name", &body.name, 100)?;
    if body.permissions.is_empty() {
        return Err(ApiError::Validation(vec![FieldError::new("permissions", "must name at least one permission")]));
    }
    if let Some(p) = body.permissions.iter().find(|p| !p.grantable_to_api_key()) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "permissions",
            format!("`{}` cannot be given to an API key", p.as_str()),
        )]));
    }
    let mut tx = state.db().begin().await?;
    let (key, token) =
        api_keys::create(&mut tx, brand, &name, &body.permissions, caller.principal.account().map(|a| a.get())).await?;
    audit::record(&mut tx, &caller, Entry::new("api-key.created", format!("api-key:{}", key.id)).after(&key)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, token })))
}

/// The brand's API keys (never their secrets).
#[utoipa::path(get, path = "/brands/{brand_id}/api-keys", tag = "api-keys", params(("brand_id" = i64, Path)),
    responses((status = 200, body = Vec<ApiKey>)))]
#[tracing::instrument(skip_all)]
async fn list_keys(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ApiKey>>> {
    let mut conn = state.db().acquire().await?;
    Ok(Json(api_keys::list(&mut conn, caller.brand()?.id).await?))
}

/// Revokes an API key; it stops working at once.
#[utoipa::path(delete, path = "/brands/{brand_id}/api-keys/{key_id}", tag = "api-keys",
    params(("brand_id" = i64, Path), ("key_id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn revoke_key(State(state): State<AppState>, caller: Caller, Path(path): Path<KeyPath>) -> ApiResult<StatusCode> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    let key = api_keys::revoke(&mut tx, brand, path.key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such live API key".into()))?;
    audit::record(&mut tx, &caller, Entry::new("api-key.revoked", format!("api-key:{}", key.id)).before(&key)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
