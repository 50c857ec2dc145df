//! The wall in front of every route: who is calling ([`Principal`]), whether they hold the
//! route's permission, and on which brand ([`Caller`]).
//!
//! Routes are added through [`require`] (naming a [`Permission`]) or [`public`]; both mark the
//! OpenAPI operation (`x-permission` or `x-public`), so a test can enumerate every route and
//! check it against the permission table, and a route added any other way fails that test.
//! Handlers behind [`require`] take [`Caller`]; a brand-scoped handler reads the verified brand
//! from [`Caller::brand`] and filters every query by it.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts, RawPathParams, Request},
    http::{HeaderMap, header, request::Parts},
    middleware::Next,
    response::IntoResponse,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use utoipa::openapi::{
    extensions::Extensions,
    path::{Operation, PathItem},
    security::SecurityRequirement,
};
use utoipa_axum::router::UtoipaMethodRouter;
use uuid::Uuid;

use super::{
    AccountId, BrandId, access,
    acl::{ACCOUNT_GRANTS, BrandRole, CUSTOMER_GRANTS, Permission, PlatformRole, Scope, brand_grants, platform_grants},
};
use crate::{
    AppState,
    http::{ApiError, ApiResult},
};

/// The OpenAPI security scheme every protected operation names.
pub const SECURITY_SCHEME: &str = "bearer";
/// OpenAPI extension naming the permission an operation requires.
pub const X_PERMISSION: &str = "x-permission";
/// OpenAPI extension marking an operation anyone may call.
pub const X_PUBLIC: &str = "x-public";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Staff or a brand member, signed in with a password.
    Account { id: AccountId, platform_role: Option<PlatformRole> },
    /// A buyer or reward holder, signed in with their wallet.
    Customer { id: i64, wallet: alloy::primitives::Address },
    /// A brand's server, with a key limited to some of the brand's permissions.
    ApiKey { id: i64, brand: BrandId, permissions: Vec<Permission> },
}

impl Principal {
    /// How the audit log names it.
    pub fn actor(&self) -> String {
        match self {
            Principal::Account { id, .. } => format!("account:{id}"),
            Principal::Customer { id, .. } => format!("customer:{id}"),
            Principal::ApiKey { id, .. } => format!("api-key:{id}"),
        }
    }

    /// The signed-in account, if it is one.
    pub fn account(&self) -> Option<AccountId> {
        match self {
            Principal::Account { id, .. } => Some(*id),
            _ => None,
        }
    }

    fn holds_platform(&self, permission: Permission) -> bool {
        match self {
            Principal::Account { platform_role, .. } => {
                ACCOUNT_GRANTS.contains(&permission)
                    || platform_role.is_some_and(|role| platform_grants(role).contains(&permission))
            }
            Principal::Customer { .. } => CUSTOMER_GRANTS.contains(&permission),
            Principal::ApiKey { .. } => false,
        }
    }
}

/// Where a request came from, for the audit log, sessions and rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    /// The client's IP (the socket peer, or the proxy's `X-Forwarded-For` last hop when trusted).
    pub ip: Option<IpAddr>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    fn from_parts(parts: &Parts, trust_forwarded_for: bool) -> Self {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Self {
            ip: client_ip(&parts.headers, parts.extensions.get::<ConnectInfo<SocketAddr>>(), trust_forwarded_for),
            request_id: header("x-request-id"),
            user_agent: header(header::USER_AGENT.as_str()).map(|ua| ua.chars().take(300).collect()),
        }
    }

    /// The IP as text (`unknown` without one), for rate-limit buckets.
    pub fn ip_key(&self) -> String {
        self.ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// The client IP: the last `X-Forwarded-For` entry when the proxy is trusted (the one it
/// appended), else the TCP peer.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    let forwarded = trust_forwarded_for
        .then(|| headers.get("x-forwarded-for")?.to_str().ok()?.rsplit(',').next()?.trim().parse().ok())
        .flatten();
    forwarded.or_else(|| peer.map(|ConnectInfo(addr)| addr.ip()))
}

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts, state.config().auth.trust_forwarded_for))
    }
}

/// The brand a brand-scoped request acts on, after the wall checked the caller may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrandAccess {
    pub id: BrandId,
    /// The caller's role in it; `None` when access comes from a platform role or an API key.
    pub role: Option<BrandRole>,
}

/// An authorised caller: set by [`require`]'s wall, taken by handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    /// The session the access token belongs to (none for API keys).
    pub session: Option<Uuid>,
    /// The permission the route required.
    pub permission: Permission,
    brand: Option<BrandAccess>,
    pub meta: RequestMeta,
}

impl Caller {
    /// The brand of a brand-scoped route (checked: the caller may act on it).
    pub fn brand(&self) -> ApiResult<BrandAccess> {
        self.brand.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route is not brand-scoped")))
    }

    /// Whether the caller may also use `permission` (on this route's brand, for a brand-scoped
    /// one), by the same rules as the wall: for a page to offer only what its reader may do.
    pub fn holds(&self, permission: Permission) -> bool {
        match (permission.scope(), &self.principal, self.brand) {
            (Scope::Platform, principal, _) => principal.holds_platform(permission),
            (Scope::Brand, Principal::ApiKey { permissions, .. }, Some(_)) => permissions.contains(&permission),
            (Scope::Brand, Principal::Account { platform_role, .. }, Some(access)) => {
                access.role.is_some_and(|role| brand_grants(role).contains(&permission))
                    || platform_role.is_some_and(|role| platform_grants(role).contains(&permission))
            }
            _ => false,
        }
    }

    /// The signed-in account, or 403 for customers and API keys on account routes.
    pub fn account(&self) -> ApiResult<AccountId> {
        self.principal.account().ok_or(ApiError::Forbidden)
    }

    /// The signed-in customer and their wallet, or 403 for anyone else on customer routes.
    pub fn customer(&self) -> ApiResult<(i64, alloy::primitives::Address)> {
        match self.principal {
            Principal::Customer { id, wallet } => Ok((id, wallet)),
            _ => Err(ApiError::Forbidden),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Only `require`'s wall inserts it: a handler taking `Caller` on a route added without a
        // permission is a bug, answered 500 rather than letting the request through.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("handler takes Caller but its route has no permission")))
    }
}

/// Adds routes that need `permission`: the wall authenticates the caller, resolves the brand
/// from `{brand_id}` for brand-scoped permissions, checks the permission table, and hands the
/// handler a [`Caller`]. Marks the OpenAPI operations with the permission and the security
/// scheme.
///
/// # Panics
/// At router construction, if a brand-scoped permission guards a path without `{brand_id}`.
pub fn require(permission: Permission, routes: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, mut paths, router) = routes;
    for (path, item) in &mut paths.paths {
        assert!(
            permission.scope() != Scope::Brand || path.contains("{brand_id}"),
            "{path}: brand-scoped permission {permission:?} needs a {{brand_id}} path parameter"
        );
        for operation in operations(item) {
            operation.security = Some(vec![SecurityRequirement::new::<_, _, &str>(SECURITY_SCHEME, [])]);
            mark(operation, X_PERMISSION, permission.as_str().into());
        }
    }
    let router = router
        .route_layer(axum::middleware::from_fn(move |request: Request, next: Next| wall(permission, request, next)));
    (schemas, paths, router)
}

/// A page with no JSON twin (a home page) behind the same wall as [`require`]'s routes.
pub fn require_page(
    permission: Permission,
    page: axum::routing::MethodRouter<AppState>,
) -> axum::routing::MethodRouter<AppState> {
    page.route_layer(axum::middleware::from_fn(move |request: Request, next: Next| wall(permission, request, next)))
}

/// The permission wall: the request goes on with its [`Caller`], or is refused (a browser gets
/// a page instead: [`crate::pages::html_errors`]).
async fn wall(permission: Permission, request: Request, next: Next) -> axum::response::Response {
    match authorize(permission, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Adds routes anyone may call (sign-in, health). Marked `x-public` in the OpenAPI document.
pub fn public(routes: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, mut paths, router) = routes;
    for item in paths.paths.values_mut() {
        for operation in operations(item) {
            mark(operation, X_PUBLIC, true.into());
        }
    }
    (schemas, paths, router)
}

/// Every operation of an OpenAPI path item.
pub(crate) fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn mark(operation: &mut Operation, key: &str, value: serde_json::Value) {
    operation.extensions.get_or_insert_with(Extensions::default).insert(key.to_owned(), value);
}

async fn authorize(permission: Permission, request: Request) -> ApiResult<Request> {
    let (mut parts, body) = request.into_parts();
    let state = parts
        .extensions
        .get::<AppState>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState extension missing")))?;
    let meta = RequestMeta::from_parts(&parts, state.config().auth.trust_forwarded_for);
    let (principal, session) = authenticate(&state, &parts.headers).await?;
    if credentials(&parts.headers).is_some_and(|(_, from_cookie)| from_cookie) && !parts.method.is_safe() {
        check_csrf(&parts.headers)?;
    }
    let brand = match permission.scope() {
        Scope::Platform if principal.holds_platform(permission) => None,
        Scope::Platform => return Err(ApiError::Forbidden),
        Scope::Brand => {
            let params = RawPathParams::from_request_parts(&mut parts, &())
                .await
                .map_err(|_| ApiError::Internal(anyhow::anyhow!("brand-scoped route without path parameters")))?;
            let param = |name: &str| params.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_owned());
            let brand = param("brand_id").and_then(|id| id.parse::<BrandId>().ok()).ok_or_else(no_such_brand)?;
            let access = brand_access(&state, &principal, permission, brand).await?;
            if let Some(store) = param("store_id") {
                check_store(&state, &principal, access, &store).await?;
            }
            Some(access)
        }
    };
    parts.extensions.insert(Caller { principal, session, permission, brand, meta });
    Ok(Request::from_parts(parts, body))
}

/// Whether the request's credentials (if any) may use `permission` on `brand`: for a public
/// route that shows more to the brand's own people (e.g. a draft campaign's artwork).
pub async fn may(state: &AppState, headers: &HeaderMap, permission: Permission, brand: BrandId) -> bool {
    if bearer(headers).is_none() {
        return false;
    }
    match authenticate(state, headers).await {
        Ok((principal, _)) => brand_access(state, &principal, permission, brand).await.is_ok(),
        Err(_) => false,
    }
}

fn no_such_brand() -> ApiError {
    ApiError::NotFound("no such brand".into())
}

/// May `principal` use `permission` on `brand`? Platform staff holding it: yes, on any brand
/// that exists. Members: as their role says (403 otherwise). Anyone else: the brand is not
/// theirs to know about (404).
async fn brand_access(
    state: &AppState,
    principal: &Principal,
    permission: Permission,
    brand: BrandId,
) -> ApiResult<BrandAccess> {
    match principal {
        Principal::ApiKey { brand: own, permissions, .. } => match *own == brand {
            true if permissions.contains(&permission) => Ok(BrandAccess { id: brand, role: None }),
            true => Err(ApiError::Forbidden),
            false => Err(no_such_brand()),
        },
        Principal::Customer { .. } => Err(no_such_brand()),
        Principal::Account { id, platform_role } => {
            let row = sqlx::query!(
                r#"SELECT EXISTS (SELECT 1 FROM brands WHERE id = $1) AS "exists!",
                          (SELECT role FROM brand_members WHERE brand_id = $1 AND account_id = $2) AS role"#,
                brand.get(),
                id.get(),
            )
            .fetch_one(state.db())
            .await?;
            let role = row.role.as_deref().and_then(|role| role.parse::<BrandRole>().ok());
            let as_staff = platform_role.is_some_and(|role| platform_grants(role).contains(&permission));
            match role {
                _ if !row.exists => Err(no_such_brand()),
                Some(role) if brand_grants(role).contains(&permission) => {
                    Ok(BrandAccess { id: brand, role: Some(role) })
                }
                _ if as_staff => Ok(BrandAccess { id: brand, role: None }),
                Some(_) => Err(ApiError::Forbidden),
                None if platform_role.is_some() => Err(ApiError::Forbidden),
                None => Err(no_such_brand()),
            }
        }
    }
}

/// A `{store_id}` must be one of the brand's stores; verifiers may act only at their own.
async fn check_store(state: &AppState, principal: &Principal, access: BrandAccess, store: &str) -> ApiResult<()> {
    let no_such_store = || ApiError::NotFound("no such store".into());
    let store: i64 = store.parse().map_err(|_| no_such_store())?;
    let account = principal.account().map_or(0, AccountId::get);
    let row = sqlx::query!(
        r#"SELECT EXISTS (SELECT 1 FROM member_stores
                          WHERE brand_id = s.brand_id AND store_id = s.id AND account_id = $3) AS "assigned!"
           FROM stores s WHERE s.id = $1 AND s.brand_id = $2"#,
        store,
        access.id.get(),
        account,
    )
    .fetch_optional(state.db())
    .await?
    .ok_or_else(no_such_store)?;
    match access.role {
        Some(BrandRole::Verifier) if !row.assigned => Err(ApiError::Forbidden),
        _ => Ok(()),
    }
}

/// Who the `Authorization: Bearer` credential belongs to: an API key (`bm_…`) or an access
/// token whose session is still live and whose account is not disabled. Anything else is 401.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<(Principal, Option<Uuid>)> {
    let (token, from_cookie) = credentials(headers).ok_or(ApiError::Unauthenticated)?;
    if token.starts_with(super::api_keys::TOKEN_PREFIX) && !from_cookie {
        let key = super::api_keys::authenticate(state.db(), token).await?.ok_or(ApiError::Unauthenticated)?;
        return Ok((key, None));
    }
    let (subject, claims) = access::verify(&state.config().auth, token)?;
    let row = sqlx::query!(
        r#"SELECT a.platform_role, a.disabled_at IS NOT NULL AS "account_disabled?", c.wallet_address
           FROM sessions s
           LEFT JOIN accounts a ON a.id = s.account_id
           LEFT JOIN customers c ON c.id = s.customer_id
           WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
             AND (s.account_id = $2 OR s.customer_id = $3)"#,
        claims.sid,
        subject.account().map(AccountId::get),
        subject.customer(),
    )
    .fetch_optional(state.db())
    .await?
    .ok_or(ApiError::Unauthenticated)?;
    let principal = match subject {
        access::Subject::Account(_) if row.account_disabled != Some(false) => return Err(ApiError::Unauthenticated),
        access::Subject::Account(id) => {
            Principal::Account { id, platform_role: row.platform_role.as_deref().and_then(|role| role.parse().ok()) }
        }
        access::Subject::Customer(id) => Principal::Customer {
            id,
            wallet: row
                .wallet_address
                .as_deref()
                .and_then(|bytes| <[u8; 20]>::try_from(bytes).ok())
                .map(alloy::primitives::Address::from)
                .ok_or(ApiError::Unauthenticated)?,
        },
    };
    Ok((principal, Some(claims.sid)))
}

/// The page session's cookie: the access token, out of scripts' reach (`HttpOnly`), sent only
/// over HTTPS (browsers count loopback as secure) and never with a request from another site.
pub const SESSION_COOKIE: &str = "bm_session";
/// The CSRF cookie, which the page's script echoes in [`CSRF_HEADER`] on every unsafe request
/// made with the session cookie (double submit; `SameSite=Strict` already keeps other sites'
/// requests from carrying either cookie).
pub const CSRF_COOKIE: &str = "bm_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The request's credentials: a bearer token, else the page session's cookie (`true`).
fn credentials(headers: &HeaderMap) -> Option<(&str, bool)> {
    match bearer(headers) {
        Some(token) => Some((token, false)),
        None => cookie(headers, SESSION_COOKIE).map(|token| (token, true)),
    }
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A state-changing request on the cookie session must echo the CSRF cookie in its header.
pub(crate) fn check_csrf(headers: &HeaderMap) -> ApiResult<()> {
    use subtle::ConstantTimeEq;
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match (sent, cookie(headers, CSRF_COOKIE)) {
        (Some(sent), Some(expected))
            if !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(ApiError::Forbidden),
    }
}

/// Starts a page session holding `access_token` for `ttl`: sets its cookie and a fresh CSRF
/// cookie on `response`.
pub fn start_page_session(
    response: &mut axum::response::Response,
    access_token: &str,
    ttl: std::time::Duration,
) -> ApiResult<()> {
    let age = ttl.as_secs();
    for cookie in [
        format!("{SESSION_COOKIE}={access_token}; Path=/; Max-Age={age}; HttpOnly; Secure; SameSite=Strict"),
        format!("{CSRF_COOKIE}={}; Path=/; Max-Age={age}; Secure; SameSite=Strict", random_token()),
    ] {
        let value = header::HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?;
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(())
}

/// Ends the page session in the browser: both cookies expire at once.
pub fn end_page_session(response: &mut axum::response::Response) {
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        let cookie = format!("{name}=; Path=/; Max-Age=0; Secure; SameSite=Strict");
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// SHA-256 of a secret token, the form single-use tokens are stored in.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh 256-bit random token, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
