//! Exports of a brand's orders, secondary sales (royalties) and redemptions as CSV or XLSX,
//! optionally for one campaign; rows are streamed from the database as they are written.

use axum::{extract::State, response::Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use shared::{
    AppState,
    auth::{Caller, Permission, require},
    chain::checksummed,
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Path, Query},
    },
};
use sqlx::{PgPool, Row};
use tokio::sync::mpsc;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::tables::{self, Cell, Format};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(require(Permission::FinanceRead, routes!(export)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExportPath {
    kind: String,
}

/// What to export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// csv (default) or xlsx.
    format: Option<String>,
    /// Only this campaign's rows.
    campaign_id: Option<i64>,
}

/// Columns of each export, in order.
pub(crate) const ORDER_COLUMNS: &[&str] = &[
    "order_id",
    "created_at",
    "state",
    "campaign_id",
    "item_id",
    "quantity",
    "method",
    "currency",
    "subtotal_minor",
    "discount_minor",
    "total_minor",
    "buyer_email",
    "wallet_address",
];
pub(crate) const SALE_COLUMNS: &[&str] = &[
    "sale_id",
    "sold_at",
    "campaign_id",
    "marketplace",
    "side",
    "tx_hash",
    "log_index",
    "token_id",
    "seller",
    "buyer",
    "payment_token",
    "price",
    "marketplace_fee",
    "seller_proceeds",
    "royalty_expected",
    "royalty_received",
    "royalty_shortfall",
    "royalty_bps_paid",
];
pub(crate) const REDEMPTION_COLUMNS: &[&str] = &[
    "redemption_id",
    "created_at",
    "state",
    "campaign_id",
    "reward_id",
    "reward",
    "kind",
    "via",
    "token_id",
    "qr_batch_id",
    "qr_code_seq",
    "store_id",
    "recipient",
    "payout_token",
    "amount",
    "tx_hash",
];

/// Orders, sales (with royalties) or redemptions of the brand as CSV or XLSX.
#[utoipa::path(get, path = "/brands/{brand_id}/exports/{kind}", tag = "exports",
    params(("brand_id" = i64, Path), ("kind" = String, Path, description = "orders, sales or redemptions"), ExportQuery),
    responses(
        (status = 200, description = "The file", content_type = "text/csv"),
        (status = 404, body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(ExportPath { kind }): Path<ExportPath>,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    let brand = caller.brand()?.id;
    let format = match query.format.as_deref() {
        None | Some("csv") => Format::Csv,
        Some("xlsx") => Format::Xlsx,
        Some(_) => return Err(ApiError::Validation(vec![FieldError::new("format", "must be csv or xlsx")])),
    };
    let columns = match kind.as_str() {
        "orders" => ORDER_COLUMNS,
        "sales" => SALE_COLUMNS,
        "redemptions" => REDEMPTION_COLUMNS,
        _ => return Err(ApiError::NotFound(format!("no export `{kind}` (orders, sales or redemptions)"))),
    };
    let (sender, rows) = mpsc::channel(256);
    tokio::spawn(produce(state.db().clone(), kind.clone(), brand.get(), query.campaign_id, sender));
    let name = match query.campaign_id {
        Some(campaign) => format!("brand-{brand}-campaign-{campaign}-{kind}"),
        None => format!("brand-{brand}-{kind}"),
    };
    tables::respond(format, &name, columns, rows).await
}

/// Sends each row, as cells, until the rows end or the download is abandoned.
async fn pump<R>(
    rows: impl futures_util::Stream<Item = sqlx::Result<R>>,
    cells: impl Fn(R) -> Vec<Cell>,
    sender: &mpsc::Sender<anyhow::Result<Vec<Cell>>>,
) -> anyhow::Result<()> {
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.next().await {
        if sender.send(Ok(cells(row?))).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Streams the rows of an export into `sender`, stopping early if the download is abandoned.
async fn produce(
    db: PgPool,
    kind: String,
    brand: i64,
    campaign: Option<i64>,
    sender: mpsc::Sender<anyhow::Result<Vec<Cell>>>,
) {
    let result = async {
        let mut conn = db.acquire().await?;
        match kind.as_str() {
            "orders" => {
                let rows = sqlx::query!(
                    "SELECT public_id, created_at, state, campaign_id, item_id, quantity, method, currency, subtotal_minor,
                            discount_minor, total_minor, buyer_email, wallet_address
                     FROM orders WHERE brand_id = $1 AND ($2::bigint IS NULL OR campaign_id = $2) ORDER BY id",
                    brand,
                    campaign
                )
                .fetch(&mut *conn);
                pump(
                    rows,
                    |r| {
                        vec![
                            // The id the API and the buyer know the order by.
                            r.public_id.to_string().into(),
                            r.created_at.into(),
                            r.state.into(),
                            r.campaign_id.into(),
                            r.item_id.into(),
                            r.quantity.into(),
                            r.method.into(),
                            r.currency.into(),
                            r.subtotal_minor.into(),
                            r.discount_minor.into(),
                            r.total_minor.into(),
                            r.buyer_email.into(),
                            checksummed(&r.wallet_address).into(),
                        ]
                    },
                    &sender,
                )
                .await?;
            }
            "sales" => {
                let rows = sqlx::query!(
                    "SELECT id, sold_at, campaign_id, marketplace, side, tx_hash, log_index, token_id::text AS \"token_id!\",
                            seller, buyer, payment_token, price::text AS \"price!\",
                            marketplace_fee::text AS \"marketplace_fee!\", seller_proceeds::text AS \"seller_proceeds!\",
                            royalty_expected::text AS \"royalty_expected!\", royalty_received::text AS \"royalty_received!\",
                            royalty_shortfall::text AS \"royalty_shortfall!\", royalty_bps_paid
                     FROM secondary_sales WHERE brand_id = $1 AND ($2::bigint IS NULL OR campaign_id = $2) ORDER BY id",
                    brand,
                    campaign
                )
                .fetch(&mut *conn);
                pump(
                    rows,
                    |r| {
                        vec![
                            r.id.into(),
                            r.sold_at.into(),
                            r.campaign_id.into(),
                            r.marketplace.into(),
                            r.side.into(),
                            format!("0x{}", alloy::hex::encode(&r.tx_hash)).into(),
                            r.log_index.into(),
                            r.token_id.into(),
                            checksummed(&r.seller).into(),
                            checksummed(&r.buyer).into(),
                            r.payment_token.as_deref().map_or_else(|| "ETH".to_owned(), checksummed).into(),
                            r.price.into(),
                            r.marketplace_fee.into(),
                            r.seller_proceeds.into(),
                            r.royalty_expected.into(),
                            r.royalty_received.into(),
                            r.royalty_shortfall.into(),
                            r.royalty_bps_paid.into(),
                        ]
                    },
                    &sender,
                )
                .await?;
            }
            _ => {
                let rows = sqlx::query(
                    "SELECT x.id, x.created_at, x.state, x.campaign_id, x.reward_id, r.name, r.kind,
                            CASE WHEN x.qr_code_id IS NOT NULL THEN 'code' WHEN x.store_id IS NOT NULL THEN 'counter'
                                 ELSE 'wallet' END AS via,
                            x.token_id::text AS token_id, q.batch_id, q.seq, x.store_id, x.recipient, x.payout_token,
                            x.amount::text AS amount, t.tx_hash
                     FROM redemptions x JOIN campaign_rewards r ON r.id = x.reward_id
                     LEFT JOIN qr_codes q ON q.id = x.qr_code_id
                     LEFT JOIN chain_transactions t ON t.id = x.chain_tx_id
                     WHERE x.brand_id = $1 AND ($2::bigint IS NULL OR x.campaign_id = $2) ORDER BY x.id",
                )
                .bind(brand)
                .bind(campaign)
                .fetch(&mut *conn);
                pump(
                    rows,
                    |r| {
                        let address = |column: &str| r.get::<Option<Vec<u8>>, _>(column).as_deref().map(checksummed);
                        vec![
                            r.get::<i64, _>("id").into(),
                            r.get::<DateTime<Utc>, _>("created_at").into(),
                            r.get::<String, _>("state").into(),
                            r.get::<i64, _>("campaign_id").into(),
                            r.get::<i64, _>("reward_id").into(),
                            r.get::<String, _>("name").into(),
                            r.get::<String, _>("kind").into(),
                            r.get::<String, _>("via").into(),
                            r.get::<Option<String>, _>("token_id").into(),
                            r.get::<Option<i64>, _>("batch_id").into(),
                            r.get::<Option<i32>, _>("seq").into(),
                            r.get::<Option<i64>, _>("store_id").into(),
                            address("recipient").into(),
                            address("payout_token").into(),
                            r.get::<Option<String>, _>("amount").into(),
                            r.get::<Option<Vec<u8>>, _>("tx_hash").map(|h| format!("0x{}", alloy::hex::encode(h))).into(),
                        ]
                    },
                    &sender,
                )
                .await?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "export failed");
        drop(sender.send(Err(e)).await);
    }
}
