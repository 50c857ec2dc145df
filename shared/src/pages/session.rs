//! Page sessions for staff, on every service: `/sign-in` (the page), `POST /auth/staff-session`
//! (the same accounts, rules and rate limits as the back office's token sign-in, answered with
//! the page session's cookies instead of tokens) and `POST /auth/sign-out`.

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use maud::html;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    auth::{self, RequestMeta, public},
    http::{
        ApiResult, Problem,
        extract::{Json, Query},
        ratelimit,
    },
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(public(routes!(staff_session)))
        .routes(public(routes!(sign_out)))
        .route("/sign-in", get(sign_in_page))
}

/// A staff member's email and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StaffSignIn {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: secrecy::SecretString,
}

/// The page session that started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StaffSession {
    /// Seconds the page session lasts.
    expires_in: u64,
}

/// Signs staff in for the pages: the same accounts, rules and limits as the back office's
/// sign-in, answered with the page session's cookies (`HttpOnly; Secure; SameSite=Strict`)
/// instead of tokens.
#[utoipa::path(post, path = "/auth/staff-session", tag = "auth", request_body = StaffSignIn, responses(
    (status = 200, description = "Signed in; the cookies are set", body = StaffSession),
    (status = 401, description = "Unknown email, wrong password or disabled account (indistinguishable)",
        body = Problem),
    (status = 429, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn staff_session(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<StaffSignIn>,
) -> ApiResult<Response> {
    use secrecy::ExposeSecret;
    ratelimit::attempt(&state, "sign-in", &meta, Some(&body.email.trim().to_lowercase())).await?;
    let pair = auth::sign_in(state.db(), &state.config().auth, &body.email, body.password, &meta).await?;
    let mut response = Json(StaffSession { expires_in: pair.expires_in }).into_response();
    auth::start_page_session(&mut response, pair.access_token.expose_secret(), Duration::from_secs(pair.expires_in))?;
    Ok(response)
}

/// Ends the page session: its session is revoked and its cookies cleared. It must echo its CSRF
/// cookie, as for any change. (API clients holding tokens sign out with `/auth/logout`; a bearer
/// token here ends nothing.)
#[utoipa::path(post, path = "/auth/sign-out", tag = "auth", responses(
    (status = 204, description = "Signed out (also when there was no session)"),
    (status = 403, description = "A page session without its CSRF header", body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let page_session = !headers.contains_key(axum::http::header::AUTHORIZATION)
        && auth::cookie(&headers, auth::SESSION_COOKIE).is_some();
    if page_session {
        auth::check_csrf(&headers)?;
        if let Ok((_, Some(session))) = auth::authenticate(&state, &headers).await {
            let mut conn = state.db().acquire().await?;
            auth::session::revoke_in(&mut conn, session).await?;
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    auth::end_page_session(&mut response);
    Ok(response)
}

/// Where to go after signing in.
#[derive(Debug, Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// `next` when it is a path on this site (never another origin), else the home page.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 2_000
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

/// The sign-in page; back to `next` once signed in.
async fn sign_in_page(Query(query): Query<Next>) -> Response {
    let next = local_path(query.next.as_deref());
    let body = html! {
        section.card aria-labelledby="signin-title" {
            h1 #signin-title { "Sign in" }
            form #signin data-api="/auth/staff-session" data-next=(next)
                data-unauthorized="Wrong email or password, or the account is disabled." {
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
                p.status role="status" aria-live="polite" {}
            }
        }
    };
    super::page("Sign in", &[], body)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed_after_signing_in() {
        assert_eq!(local_path(Some("/brands/1?x=2")), "/brands/1?x=2");
        for foreign in ["//evil.example", "/\\evil.example", "https://evil.example", "brands", "/a\nb"] {
            assert_eq!(local_path(Some(foreign)), "/", "{foreign:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
