//! Scoped API keys for brands' servers: `bm_<prefix>_<secret>`. The prefix identifies the key
//! and is shown in listings; only the secret's SHA-256 is stored. A key acts for one brand with
//! the permissions it was created with (a subset of what an API key may hold) until revoked.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::{
    BrandId,
    acl::Permission,
    guard::{Principal, random_token, token_hash},
};

/// Every API key starts with this.
pub const TOKEN_PREFIX: &str = "bm_";

/// A key as its brand's owners see it (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// The public part, `bm_<prefix>`, to recognise the key.
    pub prefix: String,
    #[schema(value_type = Vec<String>)]
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Creates a key for `brand`; returns it with the full token, shown this once.
pub async fn create(
    conn: &mut PgConnection,
    brand: BrandId,
    name: &str,
    permissions: &[Permission],
    created_by: Option<i64>,
) -> sqlx::Result<(ApiKey, String)> {
    let prefix = format!("{TOKEN_PREFIX}{}", &random_token()[..10].replace(['-', '_'], "x"));
    let secret = random_token();
    let names: Vec<String> = permissions.iter().map(|p| p.as_str().to_owned()).collect();
    let key = sqlx::query_as!(
        ApiKey,
        r#"INSERT INTO api_keys (brand_id, name, prefix, secret_hash, permissions, created_by)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, name, prefix, permissions, created_at, last_used_at, revoked_at"#,
        brand.get(),
        name,
        prefix,
        &token_hash(&secret)[..],
        &names,
        created_by,
    )
    .fetch_one(conn)
    .await?;
    let token = format!("{prefix}_{secret}");
    Ok((key, token))
}

/// The brand's keys, newest first.
pub async fn list(conn: &mut PgConnection, brand: BrandId) -> sqlx::Result<Vec<ApiKey>> {
    sqlx::query_as!(
        ApiKey,
        r#"SELECT id, name, prefix, permissions, created_at, last_used_at, revoked_at
           FROM api_keys WHERE brand_id = $1 ORDER BY id DESC"#,
        brand.get()
    )
    .fetch_all(conn)
    .await
}

/// Revokes the brand's key `id`; returns it as it was before, or `None` if the brand has no
/// such live key.
pub async fn revoke(conn: &mut PgConnection, brand: BrandId, id: i64) -> sqlx::Result<Option<ApiKey>> {
    sqlx::query_as!(
        ApiKey,
        r#"UPDATE api_keys SET revoked_at = now()
           WHERE brand_id = $1 AND id = $2 AND revoked_at IS NULL
           RETURNING id, name, prefix, permissions, created_at, last_used_at, revoked_at"#,
        brand.get(),
        id
    )
    .fetch_optional(conn)
    .await
}

/// The principal a presented key stands for, if it is a live key with a matching secret.
pub async fn authenticate(db: &PgPool, token: &str) -> sqlx::Result<Option<Principal>> {
    // `bm_` + 10 characters, `_`, the secret.
    let prefix_len = TOKEN_PREFIX.len() + 10;
    let (Some(prefix), Some(secret)) = (token.get(..prefix_len), token.get(prefix_len + 1..)) else {
        return Ok(None);
    };
    let Some(row) = sqlx::query!(
        r#"SELECT id, brand_id AS "brand_id: BrandId", secret_hash, permissions FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL"#,
        prefix
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    if !bool::from(row.secret_hash.ct_eq(&token_hash(secret)[..])) {
        return Ok(None);
    }
    // At most one write a minute per key.
    sqlx::query!(
        "UPDATE api_keys SET last_used_at = now()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        row.id
    )
    .execute(db)
    .await?;
    let permissions = row.permissions.iter().filter_map(|p| p.parse().ok()).collect();
    Ok(Some(Principal::ApiKey { id: row.id, brand: row.brand_id, permissions }))
}
