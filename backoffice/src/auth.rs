//! Signing in and out: email + password for a token pair, refresh-token rotation, logout,
//! "who am I", sessions, password reset. The rules live in `shared::auth`; this is their HTTP
//! face. The credential-guarding endpoints are rate-limited per IP and per account.

use axum::{extract::State, http::StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{self, Caller, Permission, RequestMeta, TokenPair, public, require, session::SessionInfo},
    http::{
        ApiError, ApiResult, Problem,
        extract::{Json, Path},
        ratelimit,
    },
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// The identity routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(public(routes!(sign_in)))
        .routes(public(routes!(refresh)))
        .routes(public(routes!(logout)))
        .routes(public(routes!(request_password_reset)))
        .routes(public(routes!(confirm_password_reset)))
        .routes(require(Permission::Account, routes!(me)))
        .routes(require(Permission::Account, routes!(sessions)))
        .routes(require(Permission::Account, routes!(revoke_session)))
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
    /// `admin`, `support` or `developer` for platform staff.
    platform_role: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    /// The brands the account belongs to, with its role in each.
    memberships: Vec<Membership>,
}

/// A brand the account belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Membership {
    brand_id: i64,
    brand_name: String,
    role: String,
}

/// An email whose password should be reset.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordResetRequest {
    email: String,
}

/// The token from the reset mail and the new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordResetConfirm {
    #[schema(value_type = String)]
    token: SecretString,
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

/// Signs in with email and password; starts a new session.
#[utoipa::path(post, path = "/auth/sign-in", tag = "auth", request_body = SignInRequest, responses(
    (status = 200, description = "Signed in", body = TokenResponse),
    (status = 401, description = "Unknown email, wrong password or disabled account (indistinguishable)",
        body = Problem),
    (status = 429, description = "Too many attempts from this IP or for this account; see Retry-After",
        body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn sign_in(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<SignInRequest>,
) -> ApiResult<Json<TokenResponse>> {
    ratelimit::attempt(&state, "sign-in", &meta, Some(&body.email.trim().to_lowercase())).await?;
    let pair = auth::sign_in(state.db(), &state.config().auth, &body.email, body.password, &meta).await?;
    Ok(Json(pair.into()))
}

/// Exchanges a refresh token for a new pair. The old token stops working; presenting it
/// again revokes the whole session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, description = "A new pair", body = TokenResponse),
    (status = 401, description = "Unknown, expired, revoked or reused refresh token",
        body = Problem),
    (status = 429, description = "Too many attempts; see Retry-After", body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn refresh(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let token_key = hex_prefix(&auth::token_hash(body.refresh_token.expose_secret()));
    ratelimit::attempt(&state, "refresh", &meta, Some(&token_key)).await?;
    let mut conn = state.db().acquire().await?;
    let pair = auth::refresh(&mut conn, &state.config().auth, &body.refresh_token).await?;
    Ok(Json(pair.into()))
}

/// Ends the session the refresh token belongs to; its access tokens stop working too.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest, responses(
    (status = 204, description = "Signed out (also for a token that was already revoked or unknown)"),
))]
#[tracing::instrument(skip_all)]
async fn logout(State(state): State<AppState>, Json(body): Json<RefreshRequest>) -> ApiResult<StatusCode> {
    let mut conn = state.db().acquire().await?;
    auth::logout(&mut conn, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account the access token belongs to, with its brands.
#[utoipa::path(get, path = "/auth/me", tag = "auth", responses(
    (status = 200, description = "The signed-in account", body = Me),
    (status = 401, description = "No valid access token", body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    let id = caller.account()?;
    let mut conn = state.db().acquire().await?;
    let account = auth::find_account(&mut conn, id).await?.ok_or(ApiError::Unauthenticated)?;
    let memberships = sqlx::query_as!(
        Membership,
        "SELECT m.brand_id, b.name AS brand_name, m.role
         FROM brand_members m JOIN brands b ON b.id = m.brand_id
         WHERE m.account_id = $1 ORDER BY b.name",
        id.get()
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(Me {
        id: account.id.get(),
        email: account.email,
        display_name: account.display_name,
        platform_role: account.platform_role,
        created_at: account.created_at,
        memberships,
    }))
}

/// The account's live sessions (sign-ins), newest first.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth", responses(
    (status = 200, description = "Live sessions", body = Vec<SessionInfo>),
    (status = 401, description = "No valid access token", body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn sessions(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<SessionInfo>>> {
    let mut conn = state.db().acquire().await?;
    Ok(Json(auth::session::list(&mut conn, caller.account()?).await?))
}

/// Signs one of the account's sessions out, everywhere it is used (its access tokens stop
/// working at once).
#[utoipa::path(delete, path = "/auth/sessions/{session_id}", tag = "auth",
    params(("session_id" = Uuid, Path, description = "A session id from GET /auth/sessions")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such live session of this account", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn revoke_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let account = caller.account()?;
    let mut tx = state.db().begin().await?;
    if !auth::session::revoke(&mut tx, account, session_id).await? {
        return Err(ApiError::NotFound("no such session".into()));
    }
    shared::audit::record(
        &mut tx,
        &caller,
        shared::audit::Entry::new("auth.session-revoked", format!("session:{session_id}")),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mails a single-use reset link (valid for an hour) if the email has an account. The answer
/// is the same either way.
#[utoipa::path(post, path = "/auth/password-reset", tag = "auth", request_body = PasswordResetRequest, responses(
    (status = 202, description = "If the email has an account, a reset link is on its way"),
    (status = 429, description = "Too many attempts; see Retry-After", body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn request_password_reset(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<PasswordResetRequest>,
) -> ApiResult<StatusCode> {
    ratelimit::attempt(&state, "password-reset", &meta, Some(&body.email.trim().to_lowercase())).await?;
    auth::reset::request(state.db(), state.mailer(), &body.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with the token from the reset mail; signs the account out everywhere.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirm,
    responses(
        (status = 204, description = "Password changed; every session was signed out"),
        (status = 409, description = "The token is unknown, used or expired", body = Problem),
        (status = 422, description = "The new password is unacceptable", body = Problem),
        (status = 429, description = "Too many attempts; see Retry-After", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn confirm_password_reset(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<PasswordResetConfirm>,
) -> ApiResult<StatusCode> {
    let token_key = hex_prefix(&auth::token_hash(body.token.expose_secret()));
    ratelimit::attempt(&state, "password-reset-confirm", &meta, Some(&token_key)).await?;
    auth::reset::confirm(state.db(), body.token.expose_secret(), body.new_password, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A short, non-secret name for a token in rate-limit buckets.
fn hex_prefix(hash: &[u8; 32]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}
