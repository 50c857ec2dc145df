//! Giving back what an order holds: [`release`] returns its units and its voucher use exactly
//! once; [`withdraw`] takes back a new order whose payment could not be set up; the [`Expiry`]
//! daemon expires pending orders past `expires_at` and releases them (its open PaymentIntents and
//! hosted page are closed by the card saga on `order.expired`).

use serde_json::json;
use shared::{
    AppState,
    daemon::{Daemon, RunContext, Schedule},
    http::ApiResult,
    workflow::{
        BoxFuture, Transition, apply,
        machines::{Order, OrderEvent},
    },
};
use sqlx::PgConnection;

/// Orders expired per transaction (the rest wait for the next run or the next batch).
const BATCH: i64 = 100;

/// Returns the order's units to its item and its use to its voucher, once: a second call (a
/// redelivered event, a racing daemon) finds it released and does nothing.
pub(crate) async fn release(conn: &mut PgConnection, order: i64) -> sqlx::Result<bool> {
    let released = sqlx::query!(
        "UPDATE orders SET released_at = now() WHERE id = $1 AND released_at IS NULL
         RETURNING item_id, quantity, voucher_id",
        order
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(released) = released else { return Ok(false) };
    sqlx::query!(
        "UPDATE campaign_items SET reserved = reserved - $2 WHERE id = $1",
        released.item_id,
        released.quantity
    )
    .execute(&mut *conn)
    .await?;
    if let Some(voucher) = released.voucher_id {
        sqlx::query!("UPDATE vouchers SET uses = uses - 1 WHERE id = $1 AND uses > 0", voucher)
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

/// Takes back a new order whose payment could not be set up (the buyer was answered with the
/// refusal): its units and voucher use are returned and the row removed, in one transaction. It
/// was never announced, so nothing downstream knew of it.
pub(crate) async fn withdraw(state: &AppState, id: i64) -> ApiResult<()> {
    let mut tx = state.db().begin().await?;
    release(&mut tx, id).await?;
    sqlx::query!("DELETE FROM orders WHERE id = $1 AND state = 'pending'", id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Expires pending orders whose time is up.
#[derive(Debug)]
pub(crate) struct Expiry;

impl Expiry {
    /// Expires one batch; returns how many orders it expired.
    pub(crate) async fn batch(conn: &mut PgConnection) -> anyhow::Result<u64> {
        use sqlx::Acquire;
        let mut tx = conn.begin().await?;
        let due = sqlx::query!(
            "SELECT id, brand_id, public_id FROM orders WHERE state = 'pending' AND expires_at <= now()
             ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        for order in &due {
            let payload = json!({ "brand_id": order.brand_id, "order": order.public_id });
            let transition = Transition::<Order>::new(order.id, OrderEvent::Expire, "expiry", "payment.expiry")
                .with_payload(payload);
            apply(&mut tx, transition).await?;
            release(&mut tx, order.id).await?;
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
