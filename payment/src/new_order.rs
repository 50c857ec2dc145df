//! A new order as its payment starts from it, and its announcement: what the order endpoints
//! create and the payment methods (card, wallet) build on, below both so neither imports the
//! other's module.

use serde::Deserialize;
use serde_json::json;
use shared::{
    http::{ApiError, ApiResult},
    ids::{BrandId, CampaignId, ItemId, OrderId},
    money::{Currency, Money},
    orders::{OrderState, PaymentMethod},
    workflow::outbox::{self, NewEvent},
};
use sqlx::PgConnection;
use uuid::Uuid;

/// `{order_id}` of an order path.
#[derive(Debug, Deserialize)]
pub(crate) struct OrderPath {
    pub(crate) order_id: Uuid,
}

/// `{order_id}` of a brand's order path (`/brands/{brand_id}/orders/{order_id}…`).
#[derive(Debug, Deserialize)]
pub(crate) struct BrandOrderPath {
    pub(crate) order_id: Uuid,
}

/// A new order as its payment starts from it.
pub(crate) struct Created {
    pub(crate) id: OrderId,
    pub(crate) public_id: Uuid,
    pub(crate) brand_id: BrandId,
    pub(crate) campaign_id: CampaignId,
    pub(crate) item_id: ItemId,
    pub(crate) quantity: i32,
    pub(crate) method: PaymentMethod,
    pub(crate) total: Money,
}

impl Created {
    /// The pending order `public_id` created before (a retried creation), if it still is one.
    pub(crate) async fn pending(conn: &mut PgConnection, public_id: Uuid) -> ApiResult<Option<Created>> {
        let row = sqlx::query!(
            r#"SELECT id AS "id: OrderId", brand_id AS "brand_id: BrandId", campaign_id AS "campaign_id: CampaignId",
                      item_id AS "item_id: ItemId", quantity, method AS "method: PaymentMethod", total_minor, currency
               FROM orders WHERE public_id = $1 AND state = $2"#,
            public_id,
            OrderState::Pending.as_str()
        )
        .fetch_optional(conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let internal = |e: String| ApiError::Internal(anyhow::anyhow!("order {public_id}: {e}"));
        let currency: Currency =
            row.currency.parse().map_err(|e: shared::money::MoneyError| internal(e.to_string()))?;
        Ok(Some(Created {
            id: row.id,
            public_id,
            brand_id: row.brand_id,
            campaign_id: row.campaign_id,
            item_id: row.item_id,
            quantity: row.quantity,
            method: row.method,
            total: Money::new(row.total_minor, currency),
        }))
    }
}

/// Announces a new order (`order.created`, for brand webhooks and alerts) once its payment is
/// set up, in the transaction that records it: a creation the buyer saw refused announces nothing.
pub(crate) async fn announce(conn: &mut PgConnection, order: &Created) -> ApiResult<()> {
    let event = NewEvent {
        event_type: "order.created".into(),
        aggregate_type: "order",
        aggregate_id: order.id.get(),
        payload: json!({
            "brand_id": order.brand_id, "campaign_id": order.campaign_id, "order": order.public_id,
            "item_id": order.item_id, "quantity": order.quantity, "method": order.method,
            "total_minor": order.total.minor(), "currency": order.total.currency().code(),
        }),
        correlation_id: Some(order.public_id.to_string()),
    };
    outbox::append(conn, event).await?;
    Ok(())
}
