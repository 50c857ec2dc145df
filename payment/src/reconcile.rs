//! Keeping the card path honest when webhooks go missing, and telling buyers.
//!
//! [`Reconciliation`] re-reads from Stripe the PaymentIntents of every card order that has waited
//! too long (pending or authorised past a few minutes: its own and its hosted page's) and drives
//! them as a webhook would have; then it sweeps every authorised PaymentIntent of the account that
//! names an order, cancelling any that belongs to no live order; and it lists the events Stripe
//! reports as undelivered. [`Receipts`] mails the buyer when an
//! order is fulfilled.

use std::time::Duration;

use shared::{
    daemon::{Daemon, RunContext, Schedule},
    service::Resources,
    workflow::{BoxFuture, OutboxEvent, Subscriber},
};
use sqlx::PgConnection;

use crate::stripe::{IntentStatus, PaymentIntentId};

/// How long an order may wait for Stripe's news before it is re-checked.
const STUCK_AFTER: &str = "5 minutes";
/// Pages of 100 authorised PaymentIntents swept per run at most (the rest wait for the next run).
const MAX_SWEEP_PAGES: usize = 10;

/// Re-checks card orders stuck waiting for Stripe.
pub(crate) struct Reconciliation {
    resources: Resources,
}

impl Reconciliation {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }

    /// One pass; returns how many PaymentIntents it re-checked.
    pub(crate) async fn pass(&self) -> anyhow::Result<u64> {
        let stuck = sqlx::query!(
            "SELECT id, payment_intent_id, checkout_session_id FROM orders
             WHERE method = 'card' AND state IN ('pending', 'authorized')
               AND (payment_intent_id IS NOT NULL OR checkout_session_id IS NOT NULL)
               AND updated_at < now() - $1::text::interval
             ORDER BY updated_at LIMIT 100",
            STUCK_AFTER
        )
        .fetch_all(self.resources.db())
        .await?;
        let payments = self.resources.part::<crate::Payments>()?;
        let stripe = &payments.stripe;
        let mut checked = 0;
        for order in stuck {
            // Its own PaymentIntent and the one its hosted page made, if the buyer paid there.
            let mut intents: Vec<PaymentIntentId> =
                order.payment_intent_id.as_deref().map(str::parse).transpose()?.into_iter().collect();
            if let Some(session) = order.checkout_session_id.as_deref() {
                intents.extend(stripe.checkout_session(&session.parse()?).await?.payment_intent);
            }
            for intent in intents {
                let intent = stripe.payment_intent(&intent).await?;
                if matches!(intent.status, IntentStatus::RequiresCapture | IntentStatus::Canceled) {
                    self.drive(&intent).await?;
                }
                checked += 1;
            }
            sqlx::query!("UPDATE orders SET updated_at = now() WHERE id = $1", order.id)
                .execute(self.resources.db())
                .await?;
        }
        checked += self.sweep_authorised().await?;
        match stripe.events(&[], true, 100).await {
            Ok(undelivered) if !undelivered.is_empty() => {
                let ids: Vec<&str> = undelivered.iter().map(|e| e.id.as_str()).collect();
                tracing::warn!(count = ids.len(), ?ids, "Stripe reports undelivered webhook events");
            }
            Ok(_) | Err(crate::stripe::Error::NotConfigured) => {}
            Err(e) => tracing::warn!(error = %e, "cannot list Stripe's undelivered events"),
        }
        Ok(checked)
    }

    /// The safety net for every path: each authorised PaymentIntent at Stripe that names one of
    /// our orders is driven as its webhook would be, so one that belongs to no live order (the
    /// order is over, was paid another way, or does not exist) is cancelled, and one whose
    /// webhook was lost pays for its pending order. Intents without our metadata are not ours.
    async fn sweep_authorised(&self) -> anyhow::Result<u64> {
        let payments = self.resources.part::<crate::Payments>()?;
        let stripe = &payments.stripe;
        let (mut swept, mut page) = (0, None::<String>);
        for _ in 0..MAX_SWEEP_PAGES {
            let (intents, next) = match stripe.authorised_intents(page.as_deref()).await {
                Ok(found) => found,
                Err(crate::stripe::Error::NotConfigured) => return Ok(swept),
                Err(e) => return Err(e.into()),
            };
            for intent in intents.iter().filter(|intent| intent.order_id().is_some()) {
                self.drive(intent).await?;
                swept += 1;
            }
            match next {
                Some(next) => page = Some(next),
                None => break,
            }
        }
        Ok(swept)
    }

    async fn drive(&self, intent: &crate::stripe::PaymentIntent) -> anyhow::Result<()> {
        let mut tx = self.resources.db().begin().await?;
        crate::card::drive(&self.resources, &mut tx, intent).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Daemon for Reconciliation {
    fn name(&self) -> &'static str {
        "payment.stripe-reconciliation"
    }
    fn schedule(&self) -> Schedule {
        Schedule::Every(Duration::from_secs(60))
    }
    fn run<'a>(&'a self, _: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(self.pass())
    }
}

/// Mails the buyer a receipt when an order is fulfilled (once per order: the outbox delivers
/// each event to a subscriber once; a failed send is retried).
pub(crate) struct Receipts {
    resources: Resources,
}

impl Receipts {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }

    async fn send(&self, event: &OutboxEvent, conn: &mut PgConnection) -> anyhow::Result<()> {
        let order = sqlx::query!(
            "SELECT o.public_id, o.buyer_email, o.quantity, o.total_minor, o.currency, o.method, o.wallet_address,
                    i.name AS item, c.name AS campaign, b.name AS brand
             FROM orders o JOIN campaign_items i ON i.id = o.item_id JOIN campaigns c ON c.id = o.campaign_id
             JOIN brands b ON b.id = o.brand_id WHERE o.id = $1",
            event.aggregate_id
        )
        .fetch_one(&mut *conn)
        .await?;
        let currency: shared::money::Currency = order.currency.parse()?;
        let total = shared::money::Money::new(order.total_minor, currency);
        let wallet = shared::chain::checksummed(&order.wallet_address);
        let body = format!(
            "Thank you for your order with {brand}.\n\n\
             Order: {id}\nItem: {quantity} × {item} ({campaign})\nPaid: {total} by {method}\n\
             Delivered to: {wallet}\n\nYour tokens are in your wallet.\n",
            brand = order.brand,
            id = order.public_id,
            quantity = order.quantity,
            item = order.item,
            campaign = order.campaign,
            method = order.method,
        );
        let subject = format!("Your {} order is complete", order.brand);
        self.resources.mailer().send(&order.buyer_email, &subject, body).await
    }
}

impl Subscriber for Receipts {
    fn name(&self) -> &'static str {
        "payment.receipts"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["order.fulfilled"]
    }
    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.send(event, conn))
    }
}
