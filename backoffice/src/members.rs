//! A brand's members: invitations by mail, accepting them, changing roles, removing members.
//! A brand always keeps at least one owner.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{self, AccountId, BrandId, BrandRole, Caller, Email, Permission, RequestMeta, public, require},
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Json, Path},
        ratelimit,
    },
    mail::Mailer,
};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// How long an invitation can be accepted.
const INVITE_TTL_SECS: i64 = 7 * 24 * 3600;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::MembersRead, routes!(list_members)))
        .routes(require(Permission::MembersManage, routes!(change_member, remove_member)))
        .routes(require(Permission::MembersManage, routes!(create_invite)))
        .routes(require(Permission::MembersRead, routes!(list_invites)))
        .routes(require(Permission::MembersManage, routes!(revoke_invite)))
        .routes(public(routes!(accept_invite)))
}

/// A member of a brand.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Member {
    account_id: i64,
    email: String,
    display_name: Option<String>,
    role: String,
    /// For verifiers: the stores they may redeem at.
    store_ids: Vec<i64>,
    created_at: DateTime<Utc>,
}

/// Whom to invite, as what.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InviteRequest {
    pub(crate) email: String,
    pub(crate) role: BrandRole,
    /// Verifiers only: the stores they may redeem at (at least one).
    #[serde(default)]
    pub(crate) store_ids: Vec<i64>,
}

/// An invitation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Invite {
    id: i64,
    email: String,
    role: String,
    store_ids: Vec<i64>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A new role (and, for verifiers, stores).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleChange {
    role: BrandRole,
    #[serde(default)]
    store_ids: Vec<i64>,
}

/// The token from the invitation mail, and the password: of the existing account with the
/// invited email, or of the account to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptInvite {
    #[schema(value_type = String)]
    token: SecretString,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// The membership an accepted invitation created.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accepted {
    brand_id: i64,
    account_id: i64,
    role: String,
}

#[derive(Deserialize)]
struct MemberPath {
    account_id: i64,
}

#[derive(Deserialize)]
struct InvitePath {
    invite_id: i64,
}

/// A mail to send once the transaction that decided it has committed.
#[must_use]
pub(crate) struct PendingMail {
    to: String,
    subject: String,
    body: String,
}

impl PendingMail {
    /// Sends it; a failure is logged (the invitation can be re-sent by inviting again).
    pub(crate) async fn send(self, mailer: &Mailer) {
        if let Err(e) = mailer.send(&self.to, &self.subject, self.body).await {
            tracing::error!(error = ?e, "invitation mail not sent");
        }
    }
}

/// Checks a role/stores pair: verifiers need at least one store of the brand; other roles none.
async fn check_stores(conn: &mut PgConnection, brand: BrandId, role: BrandRole, stores: &[i64]) -> ApiResult<()> {
    let invalid = |message: &str| Err(ApiError::Validation(vec![FieldError::new("store_ids", message)]));
    match role {
        BrandRole::Verifier if stores.is_empty() => return invalid("a verifier needs at least one store"),
        BrandRole::Verifier => {}
        _ if stores.is_empty() => return Ok(()),
        _ => return invalid("only verifiers are limited to stores"),
    }
    let known = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM stores WHERE brand_id = $1 AND id = ANY($2)"#,
        brand.get(),
        stores
    )
    .fetch_one(conn)
    .await?;
    let mut distinct = stores.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if usize::try_from(known).ok() != Some(distinct.len()) {
        return invalid("names a store that is not this brand's");
    }
    Ok(())
}

/// Creates an invitation (in the caller's transaction); returns its id and the mail to send.
pub(crate) async fn invite(
    conn: &mut PgConnection,
    state: &AppState,
    caller: &Caller,
    brand: BrandId,
    request: InviteRequest,
) -> ApiResult<(i64, PendingMail)> {
    let email = Email::parse(&request.email)?;
    check_stores(conn, brand, request.role, &request.store_ids).await?;
    let token = auth::random_token();
    let id = sqlx::query_scalar!(
        "INSERT INTO brand_invites (brand_id, email, role, store_ids, token_hash, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::bigint))
         RETURNING id",
        brand.get(),
        email.as_str(),
        request.role.as_str(),
        &request.store_ids,
        &auth::token_hash(&token)[..],
        caller.principal.account().map(AccountId::get),
        INVITE_TTL_SECS,
    )
    .fetch_one(&mut *conn)
    .await?;
    let after = serde_json::json!({ "role": request.role, "store_ids": request.store_ids });
    let entry = Entry::new("member.invited", format!("invite:{id}")).after(after);
    audit::record_as(conn, &caller.principal.actor(), Some(brand), &caller.meta, entry).await?;
    let brand_name = sqlx::query_scalar!("SELECT name FROM brands WHERE id = $1", brand.get()).fetch_one(conn).await?;
    let link = state.mailer().link("/invites/accept", &[("token", &token)]);
    Ok((
        id,
        PendingMail {
            to: email.as_str().to_owned(),
            subject: format!("You are invited to {brand_name} on Brandmint"),
            body: format!(
                "You are invited to join {brand_name} on Brandmint as {role}.\n\n\
             Accept within 7 days (with your existing Brandmint password, or choose one):\n{link}\n",
                role = request.role.as_str()
            ),
        },
    ))
}

/// The brand's members.
#[utoipa::path(get, path = "/brands/{brand_id}/members", tag = "members", params(("brand_id" = i64, Path)),
    responses((status = 200, body = Vec<Member>)))]
#[tracing::instrument(skip_all)]
async fn list_members(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Member>>> {
    let mut conn = state.db().acquire().await?;
    Ok(Json(members(&mut conn, caller.brand()?.id, None).await?))
}

/// The brand's members, oldest first; only `account` when given.
async fn members(conn: &mut PgConnection, brand: BrandId, account: Option<i64>) -> sqlx::Result<Vec<Member>> {
    sqlx::query_as!(
        Member,
        r#"SELECT m.account_id, a.email, a.display_name, m.role, m.created_at,
                  array(SELECT store_id FROM member_stores s
                        WHERE s.brand_id = m.brand_id AND s.account_id = m.account_id ORDER BY store_id)
                      AS "store_ids!"
           FROM brand_members m JOIN accounts a ON a.id = m.account_id
           WHERE m.brand_id = $1 AND ($2::bigint IS NULL OR m.account_id = $2)
           ORDER BY m.created_at"#,
        brand.get(),
        account
    )
    .fetch_all(conn)
    .await
}

/// The brand's invitations, newest first; only `invite` when given.
async fn invites(conn: &mut PgConnection, brand: BrandId, invite: Option<i64>) -> sqlx::Result<Vec<Invite>> {
    sqlx::query_as!(
        Invite,
        "SELECT id, email, role, store_ids, created_at, expires_at, accepted_at, revoked_at
         FROM brand_invites WHERE brand_id = $1 AND ($2::bigint IS NULL OR id = $2) ORDER BY id DESC",
        brand.get(),
        invite
    )
    .fetch_all(conn)
    .await
}

/// Invites someone by email; they get a link to accept.
#[utoipa::path(post, path = "/brands/{brand_id}/invites", tag = "members", request_body = InviteRequest,
    params(("brand_id" = i64, Path)),
    responses((status = 201, body = Invite), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn create_invite(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<InviteRequest>,
) -> ApiResult<(StatusCode, Json<Invite>)> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    let (id, mail) = invite(&mut tx, &state, &caller, brand, body).await?;
    let created =
        invites(&mut tx, brand, Some(id)).await?.pop().ok_or_else(|| anyhow::anyhow!("invite {id} vanished"))?;
    tx.commit().await?;
    mail.send(state.mailer()).await;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The brand's invitations, newest first.
#[utoipa::path(get, path = "/brands/{brand_id}/invites", tag = "members", params(("brand_id" = i64, Path)),
    responses((status = 200, body = Vec<Invite>)))]
#[tracing::instrument(skip_all)]
async fn list_invites(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Invite>>> {
    let mut conn = state.db().acquire().await?;
    Ok(Json(invites(&mut conn, caller.brand()?.id, None).await?))
}

/// Withdraws an invitation that has not been accepted.
#[utoipa::path(delete, path = "/brands/{brand_id}/invites/{invite_id}", tag = "members",
    params(("brand_id" = i64, Path), ("invite_id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn revoke_invite(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<InvitePath>,
) -> ApiResult<StatusCode> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    let revoked = sqlx::query_scalar!(
        "UPDATE brand_invites SET revoked_at = now()
         WHERE brand_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id",
        brand.get(),
        path.invite_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound("no such pending invitation".into()))?;
    audit::record(&mut tx, &caller, Entry::new("member.invite-revoked", format!("invite:{revoked}"))).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an invitation: with the password of the existing account with the invited email,
/// or creating that account with the given password.
#[utoipa::path(post, path = "/invites/accept", tag = "members", request_body = AcceptInvite, responses(
    (status = 200, description = "Now a member", body = Accepted),
    (status = 401, description = "Wrong password for the existing account", body = Problem),
    (status = 404, description = "Unknown, used, revoked or expired invitation", body = Problem),
    (status = 409, description = "Already a member", body = Problem),
    (status = 429, description = "Too many attempts; see Retry-After", body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn accept_invite(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<AcceptInvite>,
) -> ApiResult<Json<Accepted>> {
    use secrecy::ExposeSecret;
    ratelimit::attempt(&state, "invite-accept", &meta, None).await?;
    let mut tx = state.db().begin().await?;
    let invite = sqlx::query!(
        "SELECT id, brand_id, email, role, store_ids FROM brand_invites
         WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         FOR UPDATE",
        &auth::token_hash(body.token.expose_secret())[..]
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound("no such open invitation".into()))?;
    let existing = sqlx::query!("SELECT id, password_hash FROM accounts WHERE email = $1", invite.email)
        .fetch_optional(&mut *tx)
        .await?;
    let account = match existing {
        Some(row) => match auth::password::verify(body.password, Some(row.password_hash)).await? {
            true => row.id,
            false => return Err(ApiError::Unauthenticated),
        },
        None => auth::create_account(&mut tx, &invite.email, body.password, None).await?.id.get(),
    };
    let joined = sqlx::query!(
        "INSERT INTO brand_members (brand_id, account_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        invite.brand_id,
        account,
        invite.role
    )
    .execute(&mut *tx)
    .await?;
    if joined.rows_affected() == 0 {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::AlreadyAMember,
            detail: "the account is already a member".into(),
        });
    }
    sqlx::query!(
        "INSERT INTO member_stores (brand_id, account_id, store_id)
         SELECT $1, $2, s.id FROM stores s WHERE s.brand_id = $1 AND s.id = ANY($3)",
        invite.brand_id,
        account,
        &invite.store_ids
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE brand_invites SET accepted_at = now(), accepted_by = $2 WHERE id = $1", invite.id, account)
        .execute(&mut *tx)
        .await?;
    let after = serde_json::json!({ "role": invite.role, "store_ids": invite.store_ids, "invite": invite.id });
    let entry = Entry::new("member.joined", format!("account:{account}")).after(after);
    audit::record_as(&mut tx, &format!("account:{account}"), Some(BrandId::new(invite.brand_id)), &meta, entry).await?;
    tx.commit().await?;
    Ok(Json(Accepted { brand_id: invite.brand_id, account_id: account, role: invite.role }))
}

/// Locks the brand's owners and the member; refuses to leave the brand without an owner.
async fn lock_member(
    conn: &mut PgConnection,
    brand: BrandId,
    account: i64,
    new_role: Option<BrandRole>,
) -> ApiResult<(String, Vec<i64>)> {
    let owners = sqlx::query_scalar!(
        "SELECT account_id FROM brand_members WHERE brand_id = $1 AND role = 'owner' FOR UPDATE",
        brand.get()
    )
    .fetch_all(&mut *conn)
    .await?;
    let member = sqlx::query!(
        r#"SELECT role, array(SELECT store_id FROM member_stores s
                              WHERE s.brand_id = m.brand_id AND s.account_id = m.account_id ORDER BY store_id)
                        AS "store_ids!"
           FROM brand_members m WHERE brand_id = $1 AND account_id = $2 FOR UPDATE"#,
        brand.get(),
        account
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound("no such member".into()))?;
    let last_owner = owners == [account];
    if last_owner && new_role != Some(BrandRole::Owner) {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::LastOwner,
            detail: "a brand needs an owner: make someone else owner first".into(),
        });
    }
    Ok((member.role, member.store_ids))
}

/// Changes a member's role (and a verifier's stores).
#[utoipa::path(patch, path = "/brands/{brand_id}/members/{account_id}", tag = "members", request_body = RoleChange,
    params(("brand_id" = i64, Path), ("account_id" = i64, Path)),
    responses(
        (status = 200, body = Member),
        (status = 404, body = Problem),
        (status = 409, description = "It would leave the brand without an owner", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn change_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<MemberPath>,
    Json(body): Json<RoleChange>,
) -> ApiResult<Json<Member>> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    let (role, stores) = lock_member(&mut tx, brand, path.account_id, Some(body.role)).await?;
    check_stores(&mut tx, brand, body.role, &body.store_ids).await?;
    sqlx::query!(
        "UPDATE brand_members SET role = $3 WHERE brand_id = $1 AND account_id = $2",
        brand.get(),
        path.account_id,
        body.role.as_str()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM member_stores WHERE brand_id = $1 AND account_id = $2", brand.get(), path.account_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "INSERT INTO member_stores (brand_id, account_id, store_id) SELECT $1, $2, unnest($3::bigint[])
         ON CONFLICT DO NOTHING",
        brand.get(),
        path.account_id,
        &body.store_ids
    )
    .execute(&mut *tx)
    .await?;
    let entry = Entry::new("member.role-changed", format!("account:{}", path.account_id))
        .before(serde_json::json!({ "role": role, "store_ids": stores }))
        .after(serde_json::json!({ "role": body.role, "store_ids": body.store_ids }));
    audit::record(&mut tx, &caller, entry).await?;
    let member = members(&mut tx, brand, Some(path.account_id))
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("member {} vanished inside its transaction", path.account_id))?;
    tx.commit().await?;
    Ok(Json(member))
}

/// Removes a member from the brand (their access ends with their next request).
#[utoipa::path(delete, path = "/brands/{brand_id}/members/{account_id}", tag = "members",
    params(("brand_id" = i64, Path), ("account_id" = i64, Path)),
    responses(
        (status = 204),
        (status = 404, body = Problem),
        (status = 409, description = "It is the brand's last owner", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<MemberPath>,
) -> ApiResult<StatusCode> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    let (role, stores) = lock_member(&mut tx, brand, path.account_id, None).await?;
    sqlx::query!("DELETE FROM brand_members WHERE brand_id = $1 AND account_id = $2", brand.get(), path.account_id)
        .execute(&mut *tx)
        .await?;
    let entry = Entry::new("member.removed", format!("account:{}", path.account_id))
        .before(serde_json::json!({ "role": role, "store_ids": stores }));
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
