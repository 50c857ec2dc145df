//! The audit log: who changed what, when and from where — every mutation made by staff, brand
//! members and API keys, and every sign-in and role change.
//!
//! Rows are appended by the `audit_append` SQL function inside the caller's transaction, so an
//! entry commits with the change it describes or not at all. The table is append-only
//! (triggers refuse UPDATE, DELETE and TRUNCATE) and hash-chained: each row's hash covers its
//! content and the previous row's hash, so [`verify`] finds the first row that was altered,
//! inserted out of band or removed. (Removing the newest rows leaves a valid shorter chain;
//! publishing the head hash elsewhere, e.g. in daily reports, closes that gap.)

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::auth::{BrandId, Caller, RequestMeta};

/// One change to record.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// What was done, `noun.verb` (`member.invited`, `api-key.revoked`, `auth.signed-in`).
    pub action: &'a str,
    /// What it was done to (`account:12`, `brand:3`, `api-key:7`).
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl<'a> Entry<'a> {
    pub fn new(action: &'a str, target: impl Into<String>) -> Self {
        Self { action, target: target.into(), before: None, after: None }
    }

    pub fn before(mut self, before: impl Serialize) -> Self {
        self.before = serde_json::to_value(before).ok();
        self
    }

    pub fn after(mut self, after: impl Serialize) -> Self {
        self.after = serde_json::to_value(after).ok();
        self
    }
}

/// Records what `caller` did, on the caller's brand when the route is brand-scoped.
pub async fn record(conn: &mut PgConnection, caller: &Caller, entry: Entry<'_>) -> sqlx::Result<i64> {
    let brand = caller.brand().ok().map(|access| access.id);
    record_as(conn, &caller.principal.actor(), brand, &caller.meta, entry).await
}

/// Records an entry for an actor that is not (yet) a [`Caller`]: a sign-in, an invitation
/// being accepted, the system.
pub async fn record_as(
    conn: &mut PgConnection,
    actor: &str,
    brand: Option<BrandId>,
    meta: &RequestMeta,
    entry: Entry<'_>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT audit_append($1, $2, $3, $4, $5, $6, $7, $8) AS "id!""#,
        actor,
        brand.map(BrandId::get),
        entry.action,
        entry.target,
        entry.before,
        entry.after,
        meta.ip.map(|ip| ip.to_string()),
        meta.request_id,
    )
    .fetch_one(conn)
    .await
}

/// One row, as readers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Record {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub brand_id: Option<i64>,
    pub action: String,
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// Hex SHA-256 of this row, chaining to the previous one.
    pub hash: String,
}

/// A page of rows, newest first: all brands (`brand` = None) or one brand's own rows; rows
/// with ids below `before` when given.
pub async fn list(
    conn: &mut PgConnection,
    brand: Option<BrandId>,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Record>> {
    sqlx::query_as!(
        Record,
        r#"SELECT id, at, actor, brand_id, action, target, before, after, host(ip) AS ip, request_id,
                  encode(hash, 'hex') AS "hash!"
           FROM audit_log
           WHERE ($1::bigint IS NULL OR brand_id = $1) AND ($2::bigint IS NULL OR id < $2)
           ORDER BY id DESC
           LIMIT $3"#,
        brand.map(BrandId::get),
        before,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Verification {
    /// Rows checked.
    pub rows: i64,
    /// The first row whose content, hash, link to its predecessor or id sequence is wrong.
    pub first_broken: Option<i64>,
    /// Why that row is broken.
    pub reason: Option<String>,
    /// Hex hash of the last row (the chain's head), to publish elsewhere.
    pub head: Option<String>,
}

/// Walks the whole chain in id order and reports the first broken link.
pub async fn verify(conn: &mut PgConnection) -> sqlx::Result<Verification> {
    let counts = sqlx::query!(
        r#"SELECT count(*) AS "rows!", (SELECT encode(hash, 'hex') FROM audit_log ORDER BY id DESC LIMIT 1) AS head
           FROM audit_log"#
    )
    .fetch_one(&mut *conn)
    .await?;
    let broken = sqlx::query!(
        r#"SELECT id AS "id!",
                  CASE
                    WHEN id <> coalesce(prev_id + 1, 1) THEN 'a row is missing before it'
                    WHEN prev_hash <> coalesce(expected_prev,
                                               '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
                      THEN 'its link does not match the previous row''s hash'
                    ELSE 'its content does not match its hash'
                  END AS "reason!"
           FROM (SELECT a.*, lag(id) OVER w AS prev_id, lag(hash) OVER w AS expected_prev
                 FROM audit_log a WINDOW w AS (ORDER BY id)) chain
           WHERE id <> coalesce(prev_id + 1, 1)
              OR prev_hash <> coalesce(expected_prev,
                                       '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
              OR hash <> audit_row_hash(prev_hash, id, at, actor, brand_id, action, target, before, after, ip,
                                        request_id)
           ORDER BY id
           LIMIT 1"#
    )
    .fetch_optional(conn)
    .await?;
    Ok(Verification {
        rows: counts.rows,
        first_broken: broken.as_ref().map(|row| row.id),
        reason: broken.map(|row| row.reason),
        head: counts.head,
    })
}
