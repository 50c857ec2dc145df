//! An order's life: which states count as sold, as revenue and as over, and [`advance`], the one
//! way services move an order — the transition with its outbox event and, when the move ends the
//! order's hold on its units (expired, failed, mint failed), their release in the same
//! transaction.

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{OrderEvent, OrderState, inventory};
use crate::{
    ids::{BrandId, OrderId},
    workflow::{Applied, Transition, WorkflowError, apply, machines::Order},
};

impl OrderState {
    /// States in which the buyer's tokens exist: minted (capture pending) or fulfilled.
    pub const SOLD: [OrderState; 2] = [OrderState::Minted, OrderState::Fulfilled];

    /// States whose money the brand keeps: fulfilled (a refunded order is not revenue).
    pub const REVENUE: [OrderState; 1] = [OrderState::Fulfilled];

    /// Whether the order can no longer change (its stream of updates ends here).
    pub fn is_final(self) -> bool {
        matches!(self, OrderState::Fulfilled | OrderState::Expired | OrderState::Failed | OrderState::Refunded)
    }

    /// Whether an order in this state has given its units back.
    pub fn releases_units(self) -> bool {
        matches!(self, OrderState::Expired | OrderState::Failed)
    }

    /// The names of `states`, for `state = ANY($n)` in SQL.
    pub fn names(states: &[OrderState]) -> Vec<&'static str> {
        states.iter().map(|state| state.as_str()).collect()
    }
}

/// What every order event names: the order (internal and public id) and its brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderKey {
    pub id: OrderId,
    pub public_id: Uuid,
    pub brand: BrandId,
}

/// Moves `order` by `event` (recorded with `cause` by `actor`), with `extra` added to the event's
/// payload. `Ok(true)` when it moved; `Ok(false)` when it was already past it — news arriving
/// late or twice, or a cause already applied. A move into a state that gives units back
/// releases them in the same transaction.
pub async fn advance(
    conn: &mut PgConnection,
    order: &OrderKey,
    event: OrderEvent,
    cause: &str,
    actor: &str,
    extra: Value,
) -> Result<bool, WorkflowError> {
    let mut payload = json!({ "brand_id": order.brand, "order": order.public_id });
    if let (Some(payload), Value::Object(extra)) = (payload.as_object_mut(), extra) {
        payload.extend(extra);
    }
    let transition = Transition::<Order>::new(order.id.get(), event, cause, actor).with_payload(payload);
    match apply(&mut *conn, transition).await {
        Ok(Applied::Moved { to, .. }) => {
            if to.releases_units() {
                inventory::release(conn, order.id).await?;
            }
            Ok(true)
        }
        Ok(_) | Err(WorkflowError::InvalidTransition { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes back a new order whose payment could not be set up (its buyer was answered with the
/// refusal): its units and voucher use are returned and the row removed, in the caller's
/// transaction. It was never announced, so nothing downstream knew of it.
pub async fn withdraw(conn: &mut PgConnection, order: OrderId) -> sqlx::Result<()> {
    inventory::release(conn, order).await?;
    sqlx::query!("DELETE FROM orders WHERE id = $1 AND state = 'pending'", order.get()).execute(conn).await?;
    Ok(())
}
