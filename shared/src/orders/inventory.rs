//! Units held by orders. Reservation is one conditional UPDATE (`reserved + n <= supply`), so no
//! interleaving of buyers can oversell; it also locks the item's row until the order's
//! transaction ends, so a per-wallet count taken after it sees every order committed before.
//! Release marks the order released in the same statement that finds it, so units and voucher
//! uses come back exactly once whatever the number of callers.

use sqlx::PgConnection;

use super::OrderState;
use crate::ids::{ItemId, OrderId};

/// Not enough units left for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortage {
    /// Units still unreserved (0 when sold out).
    pub left: i32,
}

/// Reserves `quantity` units of `item` in the caller's transaction, or says how many are left.
pub async fn reserve(conn: &mut PgConnection, item: ItemId, quantity: i32) -> sqlx::Result<Result<(), Shortage>> {
    let reserved = sqlx::query_scalar!(
        "UPDATE campaign_items SET reserved = reserved + $2 WHERE id = $1 AND reserved + $2 <= supply
         RETURNING supply - reserved",
        item.get(),
        quantity
    )
    .fetch_optional(&mut *conn)
    .await?;
    if reserved.is_some() {
        return Ok(Ok(()));
    }
    let left = sqlx::query_scalar!("SELECT supply - reserved FROM campaign_items WHERE id = $1", item.get())
        .fetch_one(&mut *conn)
        .await?;
    Ok(Err(Shortage { left: left.unwrap_or(0).max(0) }))
}

/// Units of `item` that `wallet` holds in orders that still count (pending, being paid, sold);
/// call it after [`reserve`] so the item's lock orders it after every earlier buyer.
pub async fn held_by_wallet(conn: &mut PgConnection, item: ItemId, wallet: &[u8]) -> sqlx::Result<i64> {
    let over: Vec<&str> = [OrderState::Expired, OrderState::Failed].map(OrderState::as_str).to_vec();
    sqlx::query_scalar!(
        "SELECT COALESCE(sum(quantity), 0)::bigint AS \"n!\" FROM orders
         WHERE item_id = $1 AND wallet_address = $2 AND released_at IS NULL AND state <> ALL($3)",
        item.get(),
        wallet,
        &over as &[&str]
    )
    .fetch_one(conn)
    .await
}

/// Returns the order's units to its item and its use to its voucher, once: a second call (a
/// redelivered event, a racing daemon) finds it released and does nothing.
pub async fn release(conn: &mut PgConnection, order: OrderId) -> sqlx::Result<bool> {
    let released = sqlx::query!(
        "UPDATE orders SET released_at = now() WHERE id = $1 AND released_at IS NULL
         RETURNING item_id, quantity, voucher_id",
        order.get()
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
