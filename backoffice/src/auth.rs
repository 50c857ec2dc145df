//! Signing in and out: email + password for a token pair, refresh-token rotation, logout and
//! "who am I". The rules live in `shared::auth`; this is their HTTP face.

use axum::{extract::State, http::StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{self, Authenticated, TokenPair},
    http::{ApiError, ApiResult, Problem, extract::Json},
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The identity routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sign_in)).routes(routes!(refresh)).routes(routes!(logout)).routes(routes!(me))
}

/// Email and password.
#[derive(Deserialize, ToSchema)]
pub(crate) struct SignInRequest {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// A refresh token, to exchange or to revoke.
#[derive(Deserialize, ToSchema)]
pub(crate) struct RefreshRequest {
    #[schema(value_type = String)]
    refresh_token: SecretString,
}

/// A new access token and the single-use refresh token that renews it.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    /// A JWT for `Authorization: Bearer`.
    access_token: String,
    /// Single-use: exchange it at `/auth/refresh` for a new pair.
    refresh_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token.expose_secret().to_owned(),
            refresh_token: pair.refresh_token.expose_secret().to_owned(),
            token_type: "Bearer",
            expires_in: pair.expires_in,
        }
    }
}

/// The signed-in account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    id: i64,
    email: String,
    display_name: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Signs in with email and password; starts a new session.
#[utoipa::path(post, path = "/auth/sign-in", tag = "auth", request_body = SignInRequest, responses(
    (status = 200, description = "Signed in", body = TokenResponse),
    (status = 401, description = "Unknown email, wrong password or disabled account (indistinguishable)",
        body = Problem, content_type = "application/problem+json"),
))]
#[tracing::instrument(skip_all)]
async fn sign_in(State(state): State<AppState>, Json(body): Json<SignInRequest>) -> ApiResult<Json<TokenResponse>> {
    let pair = auth::sign_in(state.db(), &state.config().auth, &body.email, body.password).await?;
    Ok(Json(pair.into()))
}

/// Exchanges a refresh token for a new pair. The old token stops working; presenting it
/// again revokes the whole session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, description = "A new pair", body = TokenResponse),
    (status = 401, description = "Unknown, expired, revoked or reused refresh token",
        body = Problem, content_type = "application/problem+json"),
))]
#[tracing::instrument(skip_all)]
async fn refresh(State(state): State<AppState>, Json(body): Json<RefreshRequest>) -> ApiResult<Json<TokenResponse>> {
    let mut conn = state.db().acquire().await?;
    let pair = auth::refresh(&mut conn, &state.config().auth, &body.refresh_token).await?;
    Ok(Json(pair.into()))
}

/// Ends the session the refresh token belongs to. Access tokens already issued stay valid
/// until they expire (at most `ACCESS_TOKEN_TTL_SECS`).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest, responses(
    (status = 204, description = "Signed out (also for a token that was already revoked or unknown)"),
))]
#[tracing::instrument(skip_all)]
async fn logout(State(state): State<AppState>, Json(body): Json<RefreshRequest>) -> ApiResult<StatusCode> {
    let mut conn = state.db().acquire().await?;
    auth::logout(&mut conn, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account the access token belongs to.
#[utoipa::path(get, path = "/auth/me", tag = "auth", responses(
    (status = 200, description = "The signed-in account", body = Me),
    (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
))]
#[tracing::instrument(skip_all, fields(account.id = %caller.account))]
async fn me(State(state): State<AppState>, caller: Authenticated) -> ApiResult<Json<Me>> {
    let mut conn = state.db().acquire().await?;
    match auth::find_account(&mut conn, caller.account).await? {
        Some(account) if account.disabled_at.is_none() => Ok(Json(Me {
            id: account.id.get(),
            email: account.email,
            display_name: account.display_name,
            created_at: account.created_at,
        })),
        _ => Err(ApiError::Unauthenticated),
    }
}
