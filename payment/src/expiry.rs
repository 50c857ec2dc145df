//! The [`Expiry`] daemon: pending orders past `expires_at` expire, which gives their units back
//! (the core's order lifecycle); their open PaymentIntents and hosted page are closed by the card
//! saga on `order.expired`.

use shared::{
    daemon::{Daemon, RunContext, Schedule},
    ids::{BrandId, OrderId},
    orders::{OrderEvent, OrderKey, OrderState, advance},
    workflow::BoxFuture,
};
use sqlx::PgConnection;

/// Orders expired per transaction (the rest wait for the next run or the next batch).
const BATCH: i64 = 100;

/// Expires pending orders whose time is up.
#[derive(Debug)]
pub(crate) struct Expiry;

impl Expiry {
    /// Expires one batch; returns how many orders it expired.
    pub(crate) async fn batch(conn: &mut PgConnection) -> anyhow::Result<u64> {
        use sqlx::Acquire;
        let mut tx = conn.begin().await?;
        let due = sqlx::query!(
            r#"SELECT id AS "id: OrderId", brand_id AS "brand_id: BrandId", public_id FROM orders
               WHERE state = $2 AND expires_at <= now()
               ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED"#,
            BATCH,
            OrderState::Pending.as_str()
        )
        .fetch_all(&mut *tx)
        .await?;
        for order in &due {
            let key = OrderKey { id: order.id, public_id: order.public_id, brand: order.brand_id };
            advance(&mut tx, &key, OrderEvent::Expire, "expiry", "payment.expiry", serde_json::Value::Null).await?;
        }
        tx.commit().await?;
        Ok(due.len() as u64)
    }
}

impl Daemon for Expiry {
    fn name(&self) -> &'static str {
        "payment.order-expiry"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(std::time::Duration::from_secs(15))
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            let mut conn = ctx.pool.acquire().await?;
            let mut total = 0;
            loop {
                let expired = Self::batch(&mut conn).await?;
                total += expired;
                if expired < BATCH as u64 || ctx.cancelled.is_cancelled() {
                    return Ok(total);
                }
            }
        })
    }
}
