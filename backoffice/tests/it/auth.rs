//! Signing in, token rotation with reuse detection, logout, and every way an access token is
//! refused.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{TEST_JWT_SECRET, TestApp};

const EMAIL: &str = "Staff@Brand.example";
const PASSWORD: &str = "correct horse battery staple";

/// The back office with one account, and a typed method per identity endpoint.
struct App {
    app: TestApp,
    account_id: i64,
}

impl App {
    async fn spawn() -> Self {
        let app = TestApp::spawn(backoffice::SERVICE).await;
        let mut conn = app.resources.db().acquire().await.unwrap();
        let account = shared::auth::create_account(&mut conn, EMAIL, PASSWORD.into(), None).await.unwrap();
        Self { app, account_id: account.id.get() }
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.app.client.post(self.app.url(path)).json(&body).send().await.unwrap()
    }

    async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.post("/auth/sign-in", json!({ "email": email, "password": password })).await
    }

    /// Signs in with the seeded account and returns the token pair.
    async fn tokens(&self) -> Value {
        let response = self.sign_in(EMAIL, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn refresh(&self, refresh_token: &Value) -> reqwest::Response {
        self.post("/auth/refresh", json!({ "refresh_token": refresh_token })).await
    }

    async fn logout(&self, refresh_token: &Value) -> reqwest::Response {
        self.post("/auth/logout", json!({ "refresh_token": refresh_token })).await
    }

    async fn me(&self, access_token: &str) -> reqwest::Response {
        self.app.client.get(self.app.url("/auth/me")).bearer_auth(access_token).send().await.unwrap()
    }

    /// Claims as the back office issues them, in a live session of the seeded account.
    async fn claims(&self) -> Value {
        let tokens = self.tokens().await;
        let payload = tokens["access_token"].as_str().unwrap().split('.').nth(1).unwrap();
        let issued: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        json!({
            "sub": format!("account:{}", self.account_id),
            "iss": "brandmint",
            "aud": "brandmint-api",
            "iat": now(),
            "exp": now() + 600,
            "sid": issued["sid"],
        })
    }
}

async fn assert_unauthenticated(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated");
    assert!(body.get("detail").is_none(), "a 401 says nothing about what failed: {body}");
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn sign(claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()))
        .unwrap()
}

#[tokio::test]
async fn signing_in_with_the_right_password_gives_a_bearer_pair_that_identifies_the_account() {
    let app = App::spawn().await;
    // Emails are matched case-insensitively.
    let response = app.sign_in(" staff@brand.EXAMPLE ", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);

    let me = app.me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], app.account_id);
    assert_eq!(me["email"], "staff@brand.example");
    assert!(me.get("password_hash").is_none());
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = App::spawn().await;
    assert_unauthenticated(app.sign_in(EMAIL, "correct horse battery stapler").await).await;
    assert_unauthenticated(app.sign_in("nobody@brand.example", PASSWORD).await).await;
    assert_unauthenticated(app.sign_in("not an email", PASSWORD).await).await;
}

#[tokio::test]
async fn a_disabled_account_cannot_sign_in() {
    let app = App::spawn().await;
    sqlx_disable(&app).await;
    assert_unauthenticated(app.sign_in(EMAIL, PASSWORD).await).await;
}

async fn sqlx_disable(app: &App) {
    use sqlx::Executor;
    let sql = format!("UPDATE accounts SET disabled_at = now() WHERE id = {}", app.account_id);
    app.app.resources.db().execute(sql.as_str()).await.unwrap();
}

#[tokio::test]
async fn me_without_a_bearer_token_is_401() {
    let app = App::spawn().await;
    assert_unauthenticated(app.app.get("/auth/me").await).await;
    let basic = app.app.client.get(app.app.url("/auth/me")).basic_auth("a", Some("b")).send().await.unwrap();
    assert_unauthenticated(basic).await;
}

#[tokio::test]
async fn an_access_token_with_a_tampered_signature_is_401() {
    let app = App::spawn().await;
    let tokens = app.tokens().await;
    let token = tokens["access_token"].as_str().unwrap();
    let (unsigned, signature) = token.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
    raw[0] ^= 1;
    assert_unauthenticated(app.me(&format!("{unsigned}.{}", URL_SAFE_NO_PAD.encode(raw))).await).await;

    // A token signed with another key, or with claims edited after signing, fails the same way.
    let foreign = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &app.claims().await,
        &EncodingKey::from_secret(b"someone-else's-secret-of-sufficient-length"),
    )
    .unwrap();
    assert_unauthenticated(app.me(&foreign).await).await;
    let (header, _) = unsigned.split_once('.').unwrap();
    let mut other = app.claims().await;
    other["sub"] = json!(format!("account:{}", app.account_id + 1));
    let edited = URL_SAFE_NO_PAD.encode(other.to_string());
    assert_unauthenticated(app.me(&format!("{header}.{edited}.{signature}")).await).await;
}

#[tokio::test]
async fn an_access_token_for_another_audience_or_issuer_is_401() {
    let app = App::spawn().await;
    // The forged tokens are accepted when their claims are right, so the refusals below are
    // about the claims and nothing else.
    let claims = app.claims().await;
    assert_eq!(app.me(&sign(&claims)).await.status(), StatusCode::OK);

    let mut wrong_audience = claims.clone();
    wrong_audience["aud"] = json!("payment-api");
    assert_unauthenticated(app.me(&sign(&wrong_audience)).await).await;
    let mut wrong_issuer = claims.clone();
    wrong_issuer["iss"] = json!("evil");
    assert_unauthenticated(app.me(&sign(&wrong_issuer)).await).await;
    for required in ["exp", "iss", "aud"] {
        let mut missing = claims.clone();
        missing.as_object_mut().unwrap().remove(required);
        assert_unauthenticated(app.me(&sign(&missing)).await).await;
    }
}

#[tokio::test]
async fn an_expired_access_token_is_401() {
    let app = App::spawn().await;
    let mut expired = app.claims().await;
    expired["iat"] = json!(now() - 3600);
    expired["exp"] = json!(now() - 120);
    assert_unauthenticated(app.me(&sign(&expired)).await).await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_401() {
    let app = App::spawn().await;
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = app.claims().await;
    let payload = encode(&claims);
    for alg in ["none", "None", "NONE"] {
        let header = encode(&json!({ "alg": alg, "typ": "JWT" }));
        assert_unauthenticated(app.me(&format!("{header}.{payload}.")).await).await;
        assert_unauthenticated(app.me(&format!("{header}.{payload}")).await).await;
    }
    // Nor any other algorithm than HS256, even with a valid HS384 signature over our key.
    let hs384 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS384),
        &claims,
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_unauthenticated(app.me(&hs384).await).await;
}

#[tokio::test]
async fn refreshing_rotates_the_pair_and_the_old_refresh_token_stops_working() {
    let app = App::spawn().await;
    let first = app.tokens().await;
    let response = app.refresh(&first["refresh_token"]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(app.me(second["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);

    let third = app.refresh(&second["refresh_token"]).await;
    assert_eq!(third.status(), StatusCode::OK, "a rotated-in token can itself be refreshed");
    assert_unauthenticated(app.refresh(&first["refresh_token"]).await).await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = App::spawn().await;
    let first = app.tokens().await;
    let second: Value = app.refresh(&first["refresh_token"]).await.json().await.unwrap();

    // An attacker replays the stolen first token: refused, and the session is over.
    assert_unauthenticated(app.refresh(&first["refresh_token"]).await).await;
    // The newer token, never used, is revoked with its family.
    assert_unauthenticated(app.refresh(&second["refresh_token"]).await).await;

    // Other sessions of the same account are untouched.
    let other = app.tokens().await;
    assert_eq!(app.refresh(&other["refresh_token"]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logging_out_revokes_the_session_refresh_tokens() {
    let app = App::spawn().await;
    let first = app.tokens().await;
    let second: Value = app.refresh(&first["refresh_token"]).await.json().await.unwrap();
    let other = app.tokens().await;

    assert_eq!(app.logout(&second["refresh_token"]).await.status(), StatusCode::NO_CONTENT);
    assert_unauthenticated(app.refresh(&second["refresh_token"]).await).await;
    // Logging out again, or with an unknown token, is not an error.
    assert_eq!(app.logout(&second["refresh_token"]).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.logout(&json!("no-such-token")).await.status(), StatusCode::NO_CONTENT);
    // Another session (another device) stays signed in.
    assert_eq!(app.refresh(&other["refresh_token"]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_sign_in_body_is_a_problem_not_a_401() {
    let app = App::spawn().await;
    let response = app.post("/auth/sign-in", json!({ "email": EMAIL })).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("`password`"), "{body}");
}

#[tokio::test]
async fn two_concurrent_refreshes_of_one_token_succeed_once_and_end_the_session() {
    let app = App::spawn().await;
    let first = app.tokens().await;
    let (a, b) = tokio::join!(app.refresh(&first["refresh_token"]), app.refresh(&first["refresh_token"]));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
    // The loser's attempt is a reuse: the winner's new token goes down with the family.
    let winner: Value = if a.status() == StatusCode::OK { a } else { b }.json().await.unwrap();
    assert_unauthenticated(app.refresh(&winner["refresh_token"]).await).await;
}

#[tokio::test]
async fn logging_out_or_revoking_a_session_stops_its_access_tokens_at_once() {
    let app = App::spawn().await;
    let first = app.tokens().await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.me(access).await.status(), StatusCode::OK);
    app.logout(&first["refresh_token"]).await;
    assert_unauthenticated(app.me(access).await).await;

    // Two devices; one revokes the other from the session list.
    let laptop = app.tokens().await;
    let phone = app.tokens().await;
    let (laptop, phone) = (laptop["access_token"].as_str().unwrap(), phone["access_token"].as_str().unwrap());
    let list: Value = app
        .app
        .client
        .get(app.app.url("/auth/sessions"))
        .bearer_auth(laptop)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = list.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "the logged-out session is not listed: {list}");
    let sid = |token: &str| -> Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()["sid"].clone()
    };
    assert!(sessions.iter().any(|s| s["id"] == sid(phone)));
    let url = app.app.url(&format!("/auth/sessions/{}", sid(phone).as_str().unwrap()));
    assert_eq!(app.app.client.delete(&url).bearer_auth(laptop).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_unauthenticated(app.me(phone).await).await;
    assert_eq!(app.me(laptop).await.status(), StatusCode::OK);
    // Not twice, and not someone else's.
    assert_eq!(app.app.client.delete(&url).bearer_auth(laptop).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_eleventh_sign_in_attempt_in_a_window_gets_429_with_retry_after() {
    let app = App::spawn().await;
    for attempt in 1..=10 {
        let status = app.sign_in(EMAIL, "wrong password, attempt").await.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let response = app.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The account is protected from any IP: its own bucket is full too.
    let other_email = app.sign_in("someone-else@brand.example", PASSWORD).await;
    assert_eq!(other_email.status(), StatusCode::TOO_MANY_REQUESTS, "and this IP is out of attempts");
}

#[tokio::test]
async fn a_password_reset_link_works_once_and_signs_every_session_out() {
    let app = App::spawn().await;
    let before = app.tokens().await;
    // Unknown emails get the same answer, and no mail.
    let unknown = app.post("/auth/password-reset", json!({ "email": "nobody@brand.example" })).await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    let response = app.post("/auth/password-reset", json!({ "email": EMAIL })).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let token = app.app.mailed_token("staff@brand.example").await;
    assert_eq!(app.app.mails().await.len(), 1, "no mail for the unknown email");

    let new_password = "a brand new long password";
    let confirm = |token: String, password: &'static str| {
        app.post("/auth/password-reset/confirm", json!({ "token": token, "new_password": password }))
    };
    let short = confirm(token.clone(), "short").await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY, "the token survives a refused password");
    assert_eq!(confirm(token.clone(), new_password).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(confirm(token, "another new long password").await.status(), StatusCode::CONFLICT);

    assert_unauthenticated(app.me(before["access_token"].as_str().unwrap()).await).await;
    assert_unauthenticated(app.refresh(&before["refresh_token"]).await).await;
    assert_unauthenticated(app.sign_in(EMAIL, PASSWORD).await).await;
    assert_eq!(app.sign_in(EMAIL, new_password).await.status(), StatusCode::OK);
}
