//! Carries claimed redemptions to their end, reacting to other parts' events:
//!
//! - the queue's outcome of a `RewardVault.redeem` the platform sent
//!   (`tx.confirmed.redemption-payout` → `completed`, `tx.failed.…` → `failed` with the reason;
//!   a failed claim gives its use back);
//! - the indexer's `chain.reward_redeemed.confirmed`, which completes a voucher the customer sent
//!   themselves (and is news already heard for one the platform sent);
//! - the back office's KYC decisions (`kyc.approved` pays the customer's claims waiting for it,
//!   `kyc.rejected` refuses them).
//!
//! `completed` is the `redemption.completed` event brand webhooks deliver.

use anyhow::Context;
use serde_json::json;
use shared::{
    chain::txqueue::Requester,
    service::Resources,
    workflow::{
        BoxFuture, OutboxEvent, Subscriber, Transition,
        machines::{Redemption as Machine, RedemptionEvent, RedemptionState},
    },
};
use sqlx::{PgConnection, Row};

use crate::{claims, config::RedemptionConfig};

const EVENTS: &[&str] = &[
    "chain.reward_redeemed.confirmed",
    "kyc.approved",
    "kyc.rejected",
    "tx.confirmed.redemption-payout",
    "tx.failed.redemption-payout",
];

/// The subscriber `redemption.payouts`.
pub(crate) struct Payouts {
    resources: Resources,
}

impl Payouts {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }
}

impl Subscriber for Payouts {
    fn name(&self) -> &'static str {
        "redemption.payouts"
    }

    fn event_types(&self) -> &'static [&'static str] {
        debug_assert_eq!(&EVENTS[3..], Requester::RedemptionPayout.outcomes());
        EVENTS
    }

    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let cause = format!("event:{}", event.id);
            match event.event_type.as_str() {
                "chain.reward_redeemed.confirmed" => {
                    let id: i64 = event.payload["redemption_id"].as_str().context("without redemption_id")?.parse()?;
                    let tx_hash = event.payload["tx_hash"].clone();
                    settle(conn, id, true, None, &cause, json!({ "tx_hash": tx_hash })).await
                }
                "kyc.approved" | "kyc.rejected" => {
                    let customer = event.payload["customer_id"].as_i64().context("without customer_id")?;
                    let settings = self.resources.part::<RedemptionConfig>()?;
                    decided(conn, &self.resources, &settings, customer, event.event_type == "kyc.approved", &cause)
                        .await
                }
                outcome => {
                    let id = event.payload["context"]["redemption_id"].as_i64().with_context(|| {
                        format!("{outcome} of transaction {} without its redemption", event.aggregate_id)
                    })?;
                    let reason =
                        Requester::failure_reason(&event.payload).map(|r| format!("the vault did not pay: {r}"));
                    let tx_hash = event.payload["tx_hash"].clone();
                    settle(conn, id, Requester::is_confirmed(outcome), reason, &cause, json!({ "tx_hash": tx_hash }))
                        .await
                }
            }
        })
    }
}

/// Completes (or fails) redemption `id` if it is still waiting for its payout; a second word of
/// the same payout (the queue and the indexer both report it) finds it completed.
async fn settle(
    conn: &mut PgConnection,
    id: i64,
    paid: bool,
    reason: Option<String>,
    cause: &str,
    extra: serde_json::Value,
) -> anyhow::Result<()> {
    let row = sqlx::query(
        "SELECT state, brand_id, campaign_id, reward_id, token_id::text AS token_id, qr_code_id,
                submitted_by, recipient, amount::text AS amount, payout_token
         FROM redemptions WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        // The vault paid an id this platform never issued (another deployment's database).
        tracing::warn!(redemption = id, "payout of an unknown redemption");
        return Ok(());
    };
    let state: RedemptionState = row.get::<String, _>("state").parse().map_err(|_| anyhow::anyhow!("bad state"))?;
    if !matches!(state, RedemptionState::Submitted | RedemptionState::VoucherIssued) {
        return Ok(());
    }
    let event = match (paid, state) {
        (true, _) => RedemptionEvent::Confirm,
        (false, RedemptionState::Submitted) => RedemptionEvent::Fail,
        // A failed transaction somebody else sent does not stop the customer's own voucher.
        (false, _) => return Ok(()),
    };
    if let Some(reason) = &reason {
        sqlx::query("UPDATE redemptions SET reason = $2 WHERE id = $1")
            .bind(id)
            .bind(reason)
            .execute(&mut *conn)
            .await?;
    }
    let address = |bytes: Option<Vec<u8>>| bytes.map(|b| shared::chain::checksummed(&b));
    let mut payload = json!({
        "brand_id": row.get::<i64, _>("brand_id"),
        "campaign_id": row.get::<i64, _>("campaign_id"),
        "reward_id": row.get::<i64, _>("reward_id"),
        "token_id": row.get::<Option<String>, _>("token_id"),
        "qr_code_id": row.get::<Option<i64>, _>("qr_code_id"),
        "submitted_by": row.get::<String, _>("submitted_by"),
        "recipient": address(row.get("recipient")),
        "amount": row.get::<Option<String>, _>("amount"),
        "payout_token": address(row.get("payout_token")),
        "reason": reason,
    });
    if let (Some(payload), serde_json::Value::Object(extra)) = (payload.as_object_mut(), extra) {
        payload.extend(extra);
    }
    claims::advance(conn, Transition::<Machine>::new(id, event, cause, "redemption").with_payload(payload)).await?;
    Ok(())
}

/// A KYC decision for `customer`: their claims waiting for it are paid, or refused.
async fn decided(
    conn: &mut PgConnection,
    resources: &Resources,
    settings: &RedemptionConfig,
    customer: i64,
    approved: bool,
    cause: &str,
) -> anyhow::Result<()> {
    let waiting: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, brand_id FROM redemptions WHERE customer_id = $1 AND state = 'awaiting_kyc' ORDER BY id FOR UPDATE",
    )
    .bind(customer)
    .fetch_all(&mut *conn)
    .await?;
    for (id, brand) in waiting {
        if approved {
            claims::pay(conn, resources, settings, id, cause, "redemption").await?;
        } else {
            let reason = "your identity could not be verified (KYC rejected), so this reward cannot be paid";
            sqlx::query("UPDATE redemptions SET reason = $2 WHERE id = $1")
                .bind(id)
                .bind(reason)
                .execute(&mut *conn)
                .await?;
            let transition = Transition::<Machine>::new(id, RedemptionEvent::Refuse, cause, "redemption")
                .with_payload(json!({ "brand_id": brand, "reason": reason }));
            claims::advance(conn, transition).await?;
        }
    }
    Ok(())
}
