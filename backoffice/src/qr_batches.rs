//! Printed QR codes: a brand generates a batch of codes for one reward (for packaging, receipts
//! or posters), downloads them as PNG or SVG one by one or as one printable ZIP (a PNG per code
//! and a CSV manifest), and may revoke a batch or a single code.
//!
//! Each code is `PUBLIC_BASE_URL/r/<code>`, where `<code>` is a random id and a tag made with
//! `QR_CODE_KEY` (see `shared::qr`): the redemption service refuses a forged code before reading
//! the database. Batches up to [`STEP`] codes are generated in the request; larger ones in
//! steps of [`STEP`] by the daemon `backoffice.qr-batches`, their progress in `generated`. A
//! step is one transaction, so a killed process loses no code and repeats none.

use std::io::Write;

use axum::{
    body::Body,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{Caller, Permission, require},
    daemon::{Daemon, RunContext, Schedule},
    http::{
        ApiError, ApiResult, ConflictCode, Problem,
        extract::{Json, Path},
    },
    qr::{self, CodeKey},
    workflow::{BoxFuture, NewEvent, outbox},
};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::mpsc;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::campaigns::{self, CampaignPath, Errors, check_text};

/// A code's state as shown: an issued code past its batch's expiry is expired (it is written so
/// when someone tries it). Needs `q` (the code) and `b` (its batch).
pub(crate) const CODE_STATE: &str =
    "CASE WHEN q.state = 'issued' AND b.expires_at < now() THEN 'expired' ELSE q.state END";

/// Codes generated per step (one transaction).
pub(crate) const STEP: i32 = 2_000;
/// The largest batch.
const MAX_SIZE: i64 = 100_000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::CampaignsManage, routes!(create_batch)))
        .routes(require(Permission::CampaignsRead, routes!(list_batches)))
        .routes(require(Permission::CampaignsRead, routes!(get_batch)))
        .routes(require(Permission::CampaignsRead, routes!(printable)))
        .routes(require(Permission::CampaignsRead, routes!(code_image)))
        .routes(require(Permission::CampaignsManage, routes!(revoke_batch)))
        .routes(require(Permission::CampaignsManage, routes!(revoke_code)))
}

/// A batch of printed codes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Batch {
    id: i64,
    campaign_id: i64,
    reward_id: i64,
    label: String,
    size: i32,
    /// Codes generated so far (progress while `generating`).
    generated: i32,
    /// generating, ready or revoked.
    state: String,
    /// Claims each code allows.
    uses_per_code: i32,
    /// Whether a claimant may type an address instead of signing in with the wallet.
    typed_addresses: bool,
    expires_at: Option<DateTime<Utc>>,
    /// Codes by state: issued, claimed, paid, expired, revoked.
    codes: CodeCounts,
    /// Redemptions made with the batch's codes, and how many are paid.
    redemptions: i64,
    redemptions_completed: i64,
    created_at: DateTime<Utc>,
}

/// Codes of a batch by state.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct CodeCounts {
    issued: i64,
    claimed: i64,
    paid: i64,
    expired: i64,
    revoked: i64,
}

/// A batch to generate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewBatch {
    /// A token or perk reward of the campaign.
    #[schema(minimum = 1)]
    reward_id: i64,
    /// What the codes are for, e.g. "Spring packaging run 3" (1–200 characters).
    label: String,
    /// How many codes (1–100,000).
    #[schema(minimum = 1, maximum = 100_000)]
    size: i64,
    /// Claims each code allows (default 1: single use).
    #[schema(minimum = 1, maximum = 10_000)]
    uses_per_code: Option<i64>,
    /// Let a claimant type an address instead of signing in with the wallet (default false).
    typed_addresses: Option<bool>,
    /// After this the codes are refused (absent: never).
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BatchPath {
    campaign_id: i64,
    batch_id: i64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CodePath {
    campaign_id: i64,
    batch_id: i64,
    seq: i32,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImagePath {
    campaign_id: i64,
    batch_id: i64,
    seq: i32,
    format: String,
}

/// Generates a batch of codes for a reward: answered 201 when it is ready, 202 while a large
/// batch is still being generated (follow `generated` on the batch).
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns/{campaign_id}/qr-batches", tag = "qr-codes",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    request_body = NewBatch,
    responses(
        (status = 201, description = "Generated", body = Batch),
        (status = 202, description = "Being generated", body = Batch),
        (status = 404, body = Problem),
        (status = 409, description = "A royalty share is not claimed with codes", body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn create_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id }): Path<CampaignPath>,
    Json(body): Json<NewBatch>,
) -> ApiResult<(StatusCode, Json<Batch>)> {
    let brand = caller.brand()?.id.get();
    let mut errors = Errors::default();
    let label = check_text(&mut errors, "label", &body.label, 200);
    if !(1..=MAX_SIZE).contains(&body.size) {
        errors.add("size", format!("must be 1 to {MAX_SIZE} codes"));
    }
    let uses = body.uses_per_code.unwrap_or(1);
    if !(1..=10_000).contains(&uses) {
        errors.add("uses_per_code", "must be 1 to 10000");
    }
    let now = Utc::now();
    if let Some(at) = body.expires_at
        && (at <= now || at > now + chrono::Duration::days(3660))
    {
        errors.add("expires_at", "must be in the future, within ten years");
    }
    errors.finish()?;
    let mut tx = state.db().begin().await?;
    campaigns::lock(&mut tx, brand, campaign_id).await?;
    let kind: String =
        sqlx::query_scalar("SELECT kind FROM campaign_rewards WHERE brand_id = $1 AND campaign_id = $2 AND id = $3")
            .bind(brand)
            .bind(campaign_id)
            .bind(body.reward_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no reward {} in campaign {campaign_id}", body.reward_id)))?;
    if kind == "royalty_share" {
        return Err(ApiError::Conflict {
            code: ConflictCode::RewardUnavailable,
            detail: "a royalty share is paid to holders by itself; codes are for token and perk rewards".into(),
        });
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO qr_batches (brand_id, campaign_id, reward_id, label, size, uses_per_code, typed_addresses,
                                 expires_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(brand)
    .bind(campaign_id)
    .bind(body.reward_id)
    .bind(&label)
    .bind(i32::try_from(body.size).unwrap_or(1))
    .bind(i32::try_from(uses).unwrap_or(1))
    .bind(body.typed_addresses.unwrap_or(false))
    .bind(body.expires_at)
    .bind(caller.principal.actor())
    .fetch_one(&mut *tx)
    .await?;
    let entry = Entry::new("qr-batch.created", format!("qr-batch:{id}"))
        .after(json!({ "reward_id": body.reward_id, "label": label, "size": body.size, "uses_per_code": uses }));
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    // The first step in the request: a batch of up to STEP codes is ready in the answer.
    generate_step(state.db(), &state.config().qr_code_key, Some(id)).await?;
    let batch = load(&mut *state.db().acquire().await?, brand, campaign_id, id).await?;
    let status = if batch.state == "generating" { StatusCode::ACCEPTED } else { StatusCode::CREATED };
    Ok((status, Json(batch)))
}

/// Generates the next step of batch `only` (or of the oldest batch still generating): up to
/// [`STEP`] codes in one transaction. Returns how many codes it made (0: nothing to do).
async fn generate_step(db: &PgPool, key: &CodeKey, only: Option<i64>) -> anyhow::Result<u64> {
    let mut tx = db.begin().await?;
    let batch = sqlx::query(
        "SELECT id, brand_id, size, generated FROM qr_batches
         WHERE state = 'generating' AND ($1::bigint IS NULL OR id = $1)
         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(only)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(batch) = batch else { return Ok(0) };
    let (id, brand, size, generated): (i64, i64, i32, i32) =
        (batch.get("id"), batch.get("brand_id"), batch.get("size"), batch.get("generated"));
    let count = (size - generated).min(STEP);
    let nonces: Vec<Vec<u8>> = (0..count).map(|_| key.new_brand_code().0.to_vec()).collect();
    sqlx::query(
        "INSERT INTO qr_codes (brand_id, batch_id, seq, nonce)
         SELECT $1, $2, $3 + n.ord::int, n.nonce FROM unnest($4::bytea[]) WITH ORDINALITY AS n (nonce, ord)",
    )
    .bind(brand)
    .bind(id)
    .bind(generated)
    .bind(&nonces)
    .execute(&mut *tx)
    .await?;
    let ready = generated + count == size;
    sqlx::query(
        "UPDATE qr_batches SET generated = generated + $2, state = CASE WHEN $3 THEN 'ready' ELSE state END,
                updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(count)
    .bind(ready)
    .execute(&mut *tx)
    .await?;
    if ready {
        let event = NewEvent {
            event_type: "qr_batch.ready".into(),
            aggregate_type: "qr_batch",
            aggregate_id: id,
            payload: json!({ "brand_id": brand, "batch_id": id, "size": size }),
            correlation_id: None,
        };
        outbox::append(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(u64::try_from(count)?)
}

/// The daemon `backoffice.qr-batches`: generates large batches step by step.
#[derive(Debug)]
pub(crate) struct Generator {
    key: CodeKey,
}

impl Generator {
    pub(crate) fn new(resources: &shared::service::Resources) -> Self {
        Self { key: resources.config().qr_code_key.clone() }
    }
}

impl Daemon for Generator {
    fn name(&self) -> &'static str {
        "backoffice.qr-batches"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(std::time::Duration::from_secs(1))
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            let mut made = 0;
            while !ctx.cancelled.is_cancelled() {
                match generate_step(&ctx.pool, &self.key, None).await? {
                    0 => break,
                    n => made += n,
                }
            }
            Ok(made)
        })
    }
}

/// Batch `id` of the campaign, with its counts (404 for another brand's).
async fn load(conn: &mut PgConnection, brand: i64, campaign: i64, id: i64) -> ApiResult<Batch> {
    let mut batches = list(conn, brand, campaign, Some(id)).await?;
    batches.pop().ok_or_else(|| ApiError::NotFound(format!("no QR batch {id} in campaign {campaign}")))
}

async fn list(conn: &mut PgConnection, brand: i64, campaign: i64, only: Option<i64>) -> ApiResult<Vec<Batch>> {
    let sql = format!(
        "SELECT b.id, b.campaign_id, b.reward_id, b.label, b.size, b.generated, b.state, b.uses_per_code,
                b.typed_addresses, b.expires_at, b.created_at,
                (SELECT jsonb_object_agg(state, n) FROM (SELECT {STATE} AS state, count(*) AS n FROM qr_codes q
                                                         WHERE q.batch_id = b.id GROUP BY 1) s) AS codes,
                (SELECT count(*) FROM redemptions x JOIN qr_codes q ON q.id = x.qr_code_id
                 WHERE q.batch_id = b.id) AS redemptions,
                (SELECT count(*) FROM redemptions x JOIN qr_codes q ON q.id = x.qr_code_id
                 WHERE q.batch_id = b.id AND x.state = 'completed') AS completed
         FROM qr_batches b
         WHERE b.brand_id = $1 AND b.campaign_id = $2 AND ($3::bigint IS NULL OR b.id = $3)
         ORDER BY b.id DESC LIMIT 500",
        STATE = CODE_STATE
    );
    let rows = sqlx::query(&sql).bind(brand).bind(campaign).bind(only).fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let counts: Option<serde_json::Value> = row.get("codes");
            let count = |state: &str| counts.as_ref().and_then(|c| c[state].as_i64()).unwrap_or(0);
            Batch {
                id: row.get("id"),
                campaign_id: row.get("campaign_id"),
                reward_id: row.get("reward_id"),
                label: row.get("label"),
                size: row.get("size"),
                generated: row.get("generated"),
                state: row.get("state"),
                uses_per_code: row.get("uses_per_code"),
                typed_addresses: row.get("typed_addresses"),
                expires_at: row.get("expires_at"),
                codes: CodeCounts {
                    issued: count("issued"),
                    claimed: count("claimed"),
                    paid: count("paid"),
                    expired: count("expired"),
                    revoked: count("revoked"),
                },
                redemptions: row.get("redemptions"),
                redemptions_completed: row.get("completed"),
                created_at: row.get("created_at"),
            }
        })
        .collect())
}

/// The campaign's code batches, newest first, with their codes counted by state.
#[utoipa::path(get, path = "/brands/{brand_id}/campaigns/{campaign_id}/qr-batches", tag = "qr-codes",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    responses((status = 200, body = Vec<Batch>), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn list_batches(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id }): Path<CampaignPath>,
) -> ApiResult<Json<Vec<Batch>>> {
    let brand = caller.brand()?.id.get();
    let mut conn = state.db().acquire().await?;
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM campaigns WHERE brand_id = $1 AND id = $2)")
        .bind(brand)
        .bind(campaign_id)
        .fetch_one(&mut *conn)
        .await?;
    if !known {
        return Err(ApiError::NotFound(format!("no campaign {campaign_id}")));
    }
    Ok(Json(list(&mut conn, brand, campaign_id, None).await?))
}

/// One batch: its progress while generating, its codes counted by state.
#[utoipa::path(get, path = "/brands/{brand_id}/campaigns/{campaign_id}/qr-batches/{batch_id}", tag = "qr-codes",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path), ("batch_id" = i64, Path)),
    responses((status = 200, body = Batch), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn get_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(BatchPath { campaign_id, batch_id }): Path<BatchPath>,
) -> ApiResult<Json<Batch>> {
    let brand = caller.brand()?.id.get();
    Ok(Json(load(&mut *state.db().acquire().await?, brand, campaign_id, batch_id).await?))
}

/// The URL a code's QR encodes.
fn code_url(state: &AppState, text: &str) -> String {
    state.config().http.public.link(shared::config::Site::Redemption, &format!("/r/{text}"))
}

/// The whole batch, ready to print: a ZIP streamed as it is drawn, with `manifest.csv` (one row
/// per code: seq, code, url, state, file) and `codes/<seq>.png`.
#[utoipa::path(get, path = "/brands/{brand_id}/campaigns/{campaign_id}/qr-batches/{batch_id}/printable",
    tag = "qr-codes",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path), ("batch_id" = i64, Path)),
    responses(
        (status = 200, description = "The ZIP", content_type = "application/zip"),
        (status = 404, body = Problem),
        (status = 409, description = "Still being generated", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn printable(
    State(state): State<AppState>,
    caller: Caller,
    Path(BatchPath { campaign_id, batch_id }): Path<BatchPath>,
) -> ApiResult<Response> {
    let brand = caller.brand()?.id.get();
    let mut conn = state.db().acquire().await?;
    let batch = load(&mut conn, brand, campaign_id, batch_id).await?;
    if batch.state == "generating" {
        return Err(ApiError::Conflict {
            code: ConflictCode::BatchGenerating,
            detail: format!(
                "{} of {} codes generated so far: download it when it is ready",
                batch.generated, batch.size
            ),
        });
    }
    let codes: Vec<(i32, Vec<u8>, String)> = sqlx::query_as(&format!(
        "SELECT q.seq, q.nonce, {CODE_STATE} FROM qr_codes q JOIN qr_batches b ON b.id = q.batch_id
             WHERE q.batch_id = $1 ORDER BY q.seq"
    ))
    .bind(batch_id)
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    let key = state.config().qr_code_key.clone();
    let base = code_url(&state, "");
    let (sender, chunks) = mpsc::channel::<std::io::Result<Bytes>>(16);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter { sender: sender.clone(), buffer: Vec::with_capacity(CHUNK) };
        if let Err(e) = write_zip(&mut out, &key, &base, &codes) {
            // The client sees a cut-off download rather than a valid-looking partial ZIP.
            tracing::warn!(error = %e, "printable QR batch stopped");
            drop(sender.blocking_send(Err(std::io::Error::other(e.to_string()))));
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    }));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"qr-batch-{batch_id}.zip\""))
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/zip")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Bytes sent per chunk of a streamed ZIP.
const CHUNK: usize = 256 * 1024;

/// A blocking writer whose bytes go, in chunks, to an async response body.
struct ChannelWriter {
    sender: mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK)));
        // The download was abandoned: stop drawing.
        self.sender.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// Writes the printable ZIP of `codes` (seq, nonce, state) to `out`: the manifest, then a PNG
/// per code. The PNGs are drawn on every core, in order, a few hundred at a time.
fn write_zip(out: &mut impl Write, key: &CodeKey, base: &str, codes: &[(i32, Vec<u8>, String)]) -> anyhow::Result<()> {
    use zip::{CompressionMethod, write::SimpleFileOptions};
    let texts: Vec<String> = codes
        .iter()
        .map(|(_, nonce, _)| Ok(key.brand_code(nonce.as_slice().try_into()?)))
        .collect::<anyhow::Result<_>>()?;
    let mut zip = zip::ZipWriter::new_stream(out);
    // PNGs are compressed already.
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored).large_file(false);
    zip.start_file("manifest.csv", options)?;
    let mut manifest = csv::Writer::from_writer(Vec::new());
    manifest.write_record(["seq", "code", "url", "state", "file"])?;
    for ((seq, _, state), text) in codes.iter().zip(&texts) {
        let file = format!("codes/{seq:06}.png");
        manifest.write_record([&seq.to_string(), text, &format!("{base}{text}"), state, &file])?;
    }
    zip.write_all(&manifest.into_inner()?)?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for (part, texts) in codes.chunks(256).zip(texts.chunks(256)) {
        let urls: Vec<String> = texts.iter().map(|text| format!("{base}{text}")).collect();
        let pngs = draw_all(&urls, threads)?;
        for ((seq, _, _), png) in part.iter().zip(pngs) {
            zip.start_file(format!("codes/{seq:06}.png"), options)?;
            zip.write_all(&png)?;
        }
    }
    zip.finish()?.flush()?;
    Ok(())
}

/// PNGs of `urls`, in order, drawn on `threads` threads.
fn draw_all(urls: &[String], threads: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let per = urls.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = urls
            .chunks(per)
            .map(|part| scope.spawn(move || part.iter().map(|url| qr::png(url)).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut pngs = Vec::with_capacity(urls.len());
        for part in parts {
            pngs.extend(part.join().map_err(|_| anyhow::anyhow!("a drawing thread panicked"))??);
        }
        Ok(pngs)
    })
}

/// One code's QR as `png` or `svg`.
#[utoipa::path(get, path = "/brands/{brand_id}/campaigns/{campaign_id}/qr-batches/{batch_id}/codes/{seq}/{format}",
    tag = "qr-codes",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path), ("batch_id" = i64, Path),
           ("seq" = i32, Path, description = "The code's number in the batch (1..size)"),
           ("format" = String, Path, description = "png or svg")),
    responses(
        (status = 200, description = "The image", content_type = "image/png"),
        (status = 404, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn code_image(
    State(state): State<AppState>,
    caller: Caller,
    Path(ImagePath { campaign_id, batch_id, seq, format }): Path<ImagePath>,
) -> ApiResult<Response> {
    let brand = caller.brand()?.id.get();
    let nonce = code_nonce(&state, brand, campaign_id, batch_id, seq).await?;
    let text = state.config().qr_code_key.brand_code(&nonce);
    let url = code_url(&state, &text);
    let drawn = match format.as_str() {
        "png" => qr::png(&url).map(|png| ("image/png", Body::from(png))),
        "svg" => qr::svg(&url).map(|svg| ("image/svg+xml", Body::from(svg))),
        _ => return Err(ApiError::NotFound(format!("no format `{format}` (png or svg)"))),
    };
    let (media, body) = drawn.map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(media))], body).into_response())
}

async fn code_nonce(state: &AppState, brand: i64, campaign: i64, batch: i64, seq: i32) -> ApiResult<qr::CodeId> {
    let nonce: Vec<u8> = sqlx::query_scalar(
        "SELECT q.nonce FROM qr_codes q JOIN qr_batches b ON b.id = q.batch_id
         WHERE b.brand_id = $1 AND b.campaign_id = $2 AND b.id = $3 AND q.seq = $4",
    )
    .bind(brand)
    .bind(campaign)
    .bind(batch)
    .bind(seq)
    .fetch_optional(state.db())
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no code {seq} in QR batch {batch}")))?;
    nonce.as_slice().try_into().map_err(|e: std::array::TryFromSliceError| ApiError::Internal(e.into()))
}

/// Revokes every code of the batch not yet claimed (claimed and paid codes stay as they are);
/// generation stops.
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns/{campaign_id}/qr-batches/{batch_id}/revoke",
    tag = "qr-codes",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path), ("batch_id" = i64, Path)),
    responses((status = 200, body = Batch), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn revoke_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(BatchPath { campaign_id, batch_id }): Path<BatchPath>,
) -> ApiResult<Json<Batch>> {
    let brand = caller.brand()?.id.get();
    let mut tx = state.db().begin().await?;
    let before = load(&mut tx, brand, campaign_id, batch_id).await?;
    let revoked = revoke(&mut tx, brand, batch_id, None).await?;
    sqlx::query("UPDATE qr_batches SET state = 'revoked', updated_at = now() WHERE id = $1")
        .bind(batch_id)
        .execute(&mut *tx)
        .await?;
    let entry = Entry::new("qr-batch.revoked", format!("qr-batch:{batch_id}"))
        .before(json!({ "state": before.state }))
        .after(json!({ "state": "revoked", "codes_revoked": revoked }));
    audit::record(&mut tx, &caller, entry).await?;
    let batch = load(&mut tx, brand, campaign_id, batch_id).await?;
    tx.commit().await?;
    Ok(Json(batch))
}

/// Revokes one code (a lost or leaked one) if it is not yet claimed.
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns/{campaign_id}/qr-batches/{batch_id}/codes/{seq}/revoke",
    tag = "qr-codes",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path), ("batch_id" = i64, Path), ("seq" = i32, Path)),
    responses(
        (status = 200, body = Batch),
        (status = 404, body = Problem),
        (status = 409, description = "Claimed or paid already", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn revoke_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(CodePath { campaign_id, batch_id, seq }): Path<CodePath>,
) -> ApiResult<Json<Batch>> {
    let brand = caller.brand()?.id.get();
    code_nonce(&state, brand, campaign_id, batch_id, seq).await?;
    let mut tx = state.db().begin().await?;
    if revoke(&mut tx, brand, batch_id, Some(seq)).await? == 0 {
        return Err(ApiError::Conflict {
            code: ConflictCode::InvalidTransition,
            detail: format!("code {seq} is claimed, paid, expired or revoked already"),
        });
    }
    let entry = Entry::new("qr-code.revoked", format!("qr-batch:{batch_id}")).after(json!({ "seq": seq }));
    audit::record(&mut tx, &caller, entry).await?;
    let batch = load(&mut tx, brand, campaign_id, batch_id).await?;
    tx.commit().await?;
    Ok(Json(batch))
}

/// Marks the batch's issued codes (or code `seq`) revoked, with one `qr_codes.revoked` event
/// naming how many; returns how many.
async fn revoke(conn: &mut PgConnection, brand: i64, batch: i64, seq: Option<i32>) -> ApiResult<u64> {
    let revoked = sqlx::query(
        "UPDATE qr_codes SET state = 'revoked', updated_at = now()
         WHERE batch_id = $1 AND state = 'issued' AND ($2::int IS NULL OR seq = $2)",
    )
    .bind(batch)
    .bind(seq)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if revoked > 0 {
        let event = NewEvent {
            event_type: "qr_codes.revoked".into(),
            aggregate_type: "qr_batch",
            aggregate_id: batch,
            payload: json!({ "brand_id": brand, "batch_id": batch, "seq": seq, "count": revoked }),
            correlation_id: None,
        };
        outbox::append(conn, event).await?;
    }
    Ok(revoked)
}

/// The campaign page's printed-codes section: each batch with its codes counted by state and
/// its printable ZIP, and a form to generate one for those who may.
pub(crate) async fn section(state: &AppState, caller: &Caller, campaign_id: i64) -> ApiResult<maud::Markup> {
    let brand = caller.brand()?.id.get();
    let batches = list(&mut *state.db().acquire().await?, brand, campaign_id, None).await?;
    let rewards: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, name FROM campaign_rewards WHERE brand_id = $1 AND campaign_id = $2 AND kind IN ('token', 'perk')
         ORDER BY id",
    )
    .bind(brand)
    .bind(campaign_id)
    .fetch_all(state.db())
    .await?;
    let base = format!("/brands/{brand}/campaigns/{campaign_id}/qr-batches");
    Ok(maud::html! {
        section.card aria-labelledby="codes-title" {
            h2 #codes-title { "Printed QR codes" }
            @if batches.is_empty() { p.muted { "No batches yet." } } @else {
                div.table { table {
                    thead { tr {
                        th scope="col" { "Batch" } th scope="col" { "State" } th scope="col" class="num" { "Codes" }
                        th scope="col" class="num" { "Issued" } th scope="col" class="num" { "Paid" }
                        th scope="col" class="num" { "Revoked" } th scope="col" { "Download" }
                    } }
                    tbody { @for b in &batches { tr {
                        td { (b.label) br; span.muted { "uses per code: " (b.uses_per_code) } }
                        td {
                            (crate::pages::badge(&b.state))
                            @if b.state == "generating" {
                                span data-follow=(format!("{base}/{}", b.id)) data-field="state" data-while="generating" {
                                    span.status role="status" aria-live="polite" { (b.generated) " of " (b.size) }
                                }
                            }
                        }
                        td.num { (b.size) } td.num { (b.codes.issued) } td.num { (b.codes.paid) } td.num { (b.codes.revoked) }
                        td { @if b.state != "generating" {
                            a href=(format!("{base}/{}/printable", b.id)) download { "ZIP of PNGs + manifest" }
                        } }
                    } } }
                } }
            }
            @if caller.holds(shared::auth::Permission::CampaignsManage) && !rewards.is_empty() {
                h3 { "New batch" }
                form #new-batch data-api=(base) {
                    label for="batch-reward" { "Reward" }
                    select #batch-reward name="reward_id" data-type="number" {
                        @for (id, name) in &rewards { option value=(id) { (name) } }
                    }
                    label for="batch-label" { "Label (what the codes are printed on)" }
                    input #batch-label type="text" name="label" required maxlength="200";
                    label for="batch-size" { "How many codes (1–100,000)" }
                    input #batch-size type="number" name="size" data-type="number" min="1" max="100000" required;
                    label for="batch-uses" { "Claims per code" }
                    input #batch-uses type="number" name="uses_per_code" data-type="number" min="1" max="10000" value="1";
                    label for="batch-expiry" { "Valid until (UTC; empty: no end)" }
                    input #batch-expiry type="datetime-local" name="expires_at" data-type="utc";
                    label.choice {
                        input #batch-typed type="checkbox" name="typed_addresses" data-type="bool";
                        " Customers may type an address instead of signing in with a wallet"
                    }
                    button type="submit" { "Generate" }
                    p.status role="status" aria-live="polite" {}
                }
            }
        }
    })
}
