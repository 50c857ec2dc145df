//! The card path, a saga over Stripe and the chain: authorise (manual capture) → mint → capture;
//! a mint that fails for good cancels the PaymentIntent, so the buyer is never charged for a
//! token they did not get.
//!
//! Stripe's webhooks are verified on the raw body, stored by event id (a duplicate is a no-op)
//! and handed to the outbox; [`StripeEvents`] then re-fetches the object from Stripe and moves the
//! order only forward. The mint's outcome comes from the transaction queue (`tx.*`, handled by
//! [`Mints`]); expired or failed orders have their PaymentIntent cancelled ([`Cancellations`]).
//! Every Stripe call carries an idempotency key derived from the order, so a redelivered event
//! repeats nothing.

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    sol_types::{SolCall, SolEvent},
};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use shared::{
    AppState,
    auth::{Caller, Permission, public, require},
    chain::txqueue::{self, IdempotencyKey, Requester, TxRequest},
    contracts::CampaignNFT,
    http::{
        ApiError, ApiResult, Problem,
        extract::{Body, Json, Path},
    },
    ids::{BrandId, OrderId},
    money::{Currency, Money},
    orders::{OrderEvent, OrderKey, OrderState, PaymentMethod},
    service::Resources,
    workflow::{
        BoxFuture, OutboxEvent, Subscriber,
        outbox::{self, NewEvent},
    },
};
use sqlx::PgConnection;

use crate::stripe::{self, CheckoutSessionId, IntentStatus, OrderRef, PaymentIntentId};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    Payments,
    new_order::{BrandOrderPath, OrderPath},
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(public(routes!(stripe_webhook)))
        .routes(public(routes!(checkout_session)))
        .routes(require(Permission::RefundsIssue, routes!(refund)))
}

/// What a card order's front end needs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CardPayment {
    payment_intent_id: String,
    /// For Stripe.js (`confirmCardPayment`): in the creation answer, and again when the creation is
    /// retried with the same `Idempotency-Key` while the order is pending.
    client_secret: Option<String>,
}

impl CardPayment {
    /// The view of a stored PaymentIntent (no secret).
    pub(crate) fn of(payment_intent_id: String) -> Self {
        Self { payment_intent_id, client_secret: None }
    }
}

/// A Stripe failure as the buyer sees it: a request Stripe refused because of what it asked
/// (an amount or currency it does not take, a state that does not allow it) is a 409 with
/// Stripe's reason; Stripe unreachable, failing or not configured is a 503.
pub(crate) fn stripe_error(e: stripe::Error) -> ApiError {
    use stripe::Error as E;
    match e {
        E::InvalidRequest { message, .. }
        | E::UnexpectedState { message, .. }
        | E::NotFound { message }
        | E::CardDeclined { message, .. }
        | E::InsufficientFunds { message, .. }
        | E::Card { message, .. } => ApiError::Conflict {
            code: shared::http::ConflictCode::CardPaymentRefused,
            detail: format!("the card service refused: {message}"),
        },
        E::NotConfigured => {
            ApiError::Unavailable { detail: "card payments are not available on this platform".into(), checks: None }
        }
        e @ (E::IdempotencyConflict { .. }
        | E::Authentication { .. }
        | E::RateLimited { .. }
        | E::Unavailable { .. }
        | E::Network(_)
        | E::Timeout
        | E::Decode(_)
        | E::Config(_)) => {
            tracing::warn!(error = %e, "Stripe call failed");
            ApiError::Unavailable { detail: "card payments are unavailable right now; try again".into(), checks: None }
        }
    }
}

/// The order's Stripe reference (metadata and idempotency keys).
fn order_ref(public_id: Uuid, brand: BrandId) -> ApiResult<OrderRef> {
    OrderRef::new(public_id, brand).map_err(|e| ApiError::Internal(e.into()))
}

/// Gives a new card order its manual-capture PaymentIntent and announces the order
/// (`order.created`) in the same transaction that records the intent. Idempotent: Stripe's key
/// `order-{id}-pi` returns the same PaymentIntent (with its client secret) to a retried creation,
/// and only the first caller announces. On an error nothing is announced; the caller withdraws
/// a fresh order.
pub(crate) async fn start(state: &AppState, order: &crate::new_order::Created) -> ApiResult<CardPayment> {
    let reference = order_ref(order.public_id, order.brand_id)?;
    let intent = state
        .part::<Payments>()?
        .stripe
        .create_payment_intent(&reference, order.total, None)
        .await
        .map_err(stripe_error)?;
    let mut tx = state.db().begin().await?;
    // Stripe's `payment_intent.created` webhook may have recorded the intent already.
    let attached = sqlx::query_scalar!(
        "WITH attached AS (UPDATE orders SET payment_intent_id = $2 WHERE id = $1 AND payment_intent_id IS NULL RETURNING id),
              recorded AS (INSERT INTO order_payment_intents (payment_intent_id, order_id) SELECT $2, id FROM attached
                           ON CONFLICT DO NOTHING)
         SELECT count(*) AS \"attached!\" FROM attached",
        order.id.get(),
        intent.id.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    if attached == 1 {
        crate::new_order::announce(&mut tx, order).await?;
    }
    tx.commit().await?;
    Ok(CardPayment {
        payment_intent_id: intent.id.as_str().to_owned(),
        client_secret: intent.client_secret.map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned()),
    })
}

/// A hosted payment page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HostedCheckout {
    /// Send the buyer here.
    url: String,
    session_id: String,
}

/// A Stripe-hosted payment page for a pending card order (for buyers without a custom front
/// end). Manual capture as well: the card is charged only after the mint.
///
/// Stripe Checkout always makes a PaymentIntent of its own when the buyer pays on the page, so
/// the order then has two: whichever is authorised first pays for the order and the other is
/// cancelled (and the page is closed once the order is paid another way or is over). One page
/// per order: asking again returns the same page while it is open.
#[utoipa::path(post, path = "/orders/{order_id}/checkout-session", tag = "orders", params(("order_id" = Uuid, Path)),
    responses(
        (status = 201, body = HostedCheckout),
        (status = 200, description = "The order's page, created before and still open", body = HostedCheckout),
        (status = 404, body = Problem),
        (status = 409, description = "Not a pending card order", body = Problem),
        (status = 503, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn checkout_session(
    State(state): State<AppState>,
    Path(OrderPath { order_id }): Path<OrderPath>,
) -> ApiResult<(StatusCode, Json<HostedCheckout>)> {
    let row = sqlx::query!(
        r#"SELECT o.id AS "id: OrderId", o.brand_id AS "brand_id: BrandId", o.state AS "state: OrderState",
                  o.method AS "method: PaymentMethod", o.total_minor, o.currency, o.expires_at, o.checkout_session_id,
                  c.name
           FROM orders o JOIN campaigns c ON c.id = o.campaign_id WHERE o.public_id = $1"#,
        order_id
    )
    .fetch_optional(state.db())
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no order {order_id}")))?;
    if row.state != OrderState::Pending || row.method != PaymentMethod::Card {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::NotPayable,
            detail: format!("a {} {} order", row.state, row.method),
        });
    }
    if let Some(existing) = row.checkout_session_id.as_deref() {
        let id: CheckoutSessionId = existing.parse().map_err(|e: stripe::IdError| ApiError::Internal(e.into()))?;
        let session = state.part::<Payments>()?.stripe.checkout_session(&id).await.map_err(stripe_error)?;
        return match (session.status, session.url) {
            (Some(stripe::SessionStatus::Open), Some(url)) => {
                Ok((StatusCode::OK, Json(HostedCheckout { url, session_id: existing.to_owned() })))
            }
            (status, _) => Err(ApiError::Conflict {
                code: shared::http::ConflictCode::NotPayable,
                detail: format!("this order's hosted page is {status:?}, no longer open").to_lowercase(),
            }),
        };
    }
    let currency: Currency = row.currency.parse()?;
    let reference = order_ref(order_id, row.brand_id)?;
    // Back to the order's page, where the buyer follows it until the token is minted.
    let public = &state.config().http.public;
    let success =
        public.link(shared::config::Site::Payment, &format!("/orders/{order_id}?session={{CHECKOUT_SESSION_ID}}"));
    let cancel = public.link(shared::config::Site::Payment, &format!("/orders/{order_id}"));
    // Stripe's minimum page lifetime is 30 minutes; the order's own expiry still applies.
    let expires = row.expires_at.map(|at| at.max(Utc::now() + chrono::Duration::minutes(31)));
    let request = stripe::CheckoutRequest {
        order: &reference,
        amount: Money::new(row.total_minor, currency),
        product_name: &row.name,
        success_url: &success,
        cancel_url: &cancel,
        expires_at: expires,
    };
    let session = state.part::<Payments>()?.stripe.create_checkout_session(&request).await.map_err(stripe_error)?;
    sqlx::query!(
        "UPDATE orders SET checkout_session_id = $2 WHERE id = $1 AND checkout_session_id IS NULL",
        row.id.get(),
        session.id.as_str()
    )
    .execute(state.db())
    .await?;
    let url = session.url.clone().unwrap_or_default();
    Ok((StatusCode::CREATED, Json(HostedCheckout { url, session_id: session.id.as_str().to_owned() })))
}

/// Stripe's webhook: the signature is checked on the raw body (5-minute tolerance); a verified
/// event is stored once by its id and handed to the outbox. Bad signatures and stale timestamps
/// get 400 and change nothing.
#[utoipa::path(post, path = "/webhooks/stripe", tag = "webhooks",
    request_body(content = String, content_type = "application/json"),
    params(("Stripe-Signature" = String, Header)),
    responses(
        (status = 200, description = "Received (or received before)"),
        (status = 400, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn stripe_webhook(State(state): State<AppState>, headers: HeaderMap, Body(body): Body) -> ApiResult<StatusCode> {
    let signature = headers.get(stripe::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let event = state.part::<Payments>()?.stripe.verify_webhook(&body, signature, Utc::now()).map_err(|e| {
        tracing::warn!(error = %e, "Stripe webhook refused");
        ApiError::BadRequest(format!("webhook refused: {e}"))
    })?;
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let mut tx = state.db().begin().await?;
    let inserted = sqlx::query!(
        "INSERT INTO stripe_events (id, type, object_id, payload) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        event.id.as_str(),
        event.event_type.as_str(),
        event.object_id,
        payload
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        let new = NewEvent {
            event_type: "stripe.event".into(),
            aggregate_type: "stripe_event",
            aggregate_id: 0,
            payload: json!({ "id": event.id.as_str(), "type": event.event_type.as_str(), "object_id": event.object_id }),
            correlation_id: Some(event.id.as_str().to_owned()),
        };
        outbox::append(&mut tx, new).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::OK)
}

/// The order a PaymentIntent belongs to, locked.
struct CardOrder {
    id: OrderId,
    public_id: Uuid,
    brand_id: BrandId,
    state: OrderState,
    quantity: i32,
    wallet: Vec<u8>,
    collection: Option<Vec<u8>>,
    chain_id: Option<i64>,
    /// The PaymentIntent the order is paid with: its own until another is authorised first.
    payment_intent_id: Option<String>,
    checkout_session_id: Option<String>,
}

impl CardOrder {
    fn key(&self) -> OrderKey {
        OrderKey { id: self.id, public_id: self.public_id, brand: self.brand_id }
    }

    fn reference(&self) -> anyhow::Result<OrderRef> {
        Ok(OrderRef::new(self.public_id, self.brand_id)?)
    }
}

async fn lock_order(conn: &mut PgConnection, filter: OrderFilter<'_>) -> sqlx::Result<Option<CardOrder>> {
    let (by_id, by_public, by_intent) = match filter {
        OrderFilter::Id(id) => (Some(id.get()), None, None),
        OrderFilter::Public(public) => (None, Some(public), None),
        OrderFilter::Intent(intent) => (None, None, Some(intent)),
    };
    sqlx::query_as!(
        CardOrder,
        r#"SELECT o.id AS "id: OrderId", o.public_id, o.brand_id AS "brand_id: BrandId", o.state AS "state: OrderState",
                  o.quantity, o.wallet_address AS wallet, c.collection_address AS collection, c.chain_id,
                  o.payment_intent_id, o.checkout_session_id
           FROM orders o JOIN campaigns c ON c.id = o.campaign_id
           WHERE o.id = $1 OR o.public_id = $2
              OR o.id = (SELECT order_id FROM order_payment_intents WHERE payment_intent_id = $3)
           FOR UPDATE OF o"#,
        by_id,
        by_public,
        by_intent
    )
    .fetch_optional(conn)
    .await
}

enum OrderFilter<'a> {
    Id(OrderId),
    Public(Uuid),
    Intent(&'a str),
}

/// Moves `order` by `event` unless it is already past it (the core's order lifecycle, which
/// gives the units back when the move ends the order's hold); `Ok(false)` when the order is not
/// in a state that allows it (news arriving late or twice).
async fn step(
    conn: &mut PgConnection,
    order: &CardOrder,
    event: OrderEvent,
    cause: &str,
    extra: serde_json::Value,
) -> anyhow::Result<bool> {
    Ok(shared::orders::advance(conn, &order.key(), event, cause, "payment.card", extra).await?)
}

/// Reacts to Stripe events: re-fetches the PaymentIntent and, once it is authorised, asks the
/// queue to mint; a cancelled intent fails its order.
pub(crate) struct StripeEvents {
    resources: Resources,
}

impl StripeEvents {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }

    async fn handle_event(&self, event: &OutboxEvent, conn: &mut PgConnection) -> anyhow::Result<()> {
        let payments = self.resources.part::<Payments>()?;
        let stripe = &payments.stripe;
        let object = event.payload["object_id"].as_str().unwrap_or_default();
        let intent_id = if object.starts_with("cs_") {
            // A hosted page: what matters is the PaymentIntent it made when the buyer paid.
            let session = stripe.checkout_session(&object.parse()?).await?;
            session.payment_intent
        } else if object.starts_with("pi_") {
            Some(object.parse::<PaymentIntentId>()?)
        } else {
            None
        };
        if let Some(intent_id) = intent_id {
            drive(&self.resources, conn, &stripe.payment_intent(&intent_id).await?).await?;
        }
        sqlx::query!("UPDATE stripe_events SET processed_at = now() WHERE id = $1", event.payload["id"].as_str())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Moves the order of `intent` to match Stripe's truth. The order is found by the intent's
/// metadata (every intent the platform makes, directly or through a hosted page, names its order),
/// so a PaymentIntent the order did not start with is handled the same way:
/// - authorised while the order is pending → it pays for the order: mint requested, and every
///   other way of paying this order is closed;
/// - authorised for an order that is already paid another way, or is over, or that does not
///   exist → cancelled at once (the buyer's card is released, nothing is charged);
/// - the order's own intent cancelled → the order fails.
///
/// Anything else waits. Safe to repeat: the order row is locked, every step is idempotent.
pub(crate) async fn drive(
    resources: &Resources,
    conn: &mut PgConnection,
    intent: &stripe::PaymentIntent,
) -> anyhow::Result<()> {
    let named = intent.order_id().and_then(|id| id.parse::<Uuid>().ok());
    let order = match named {
        Some(public) => lock_order(conn, OrderFilter::Public(public)).await?,
        None => lock_order(conn, OrderFilter::Intent(intent.id.as_str())).await?,
    };
    let Some(order) = order else {
        if intent.status == IntentStatus::RequiresCapture
            && let Some(public) = named
        {
            tracing::warn!(intent = %intent.id, order = %public, "an authorised PaymentIntent of no order: cancelling it");
            let brand = intent.metadata.get("brand_id").and_then(|b| b.parse().ok()).unwrap_or(BrandId::new(0));
            resources.part::<Payments>()?.stripe.cancel(&OrderRef::new(public, brand)?, &intent.id).await?;
        } else {
            tracing::warn!(intent = %intent.id, "a PaymentIntent of no order");
        }
        return Ok(());
    };
    sqlx::query!(
        "INSERT INTO order_payment_intents (payment_intent_id, order_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        intent.id.as_str(),
        order.id.get()
    )
    .execute(&mut *conn)
    .await?;
    let pays_for_order = order.payment_intent_id.as_deref() == Some(intent.id.as_str());
    let cause = format!("pi:{}:{:?}", intent.id.as_str(), intent.status);
    match intent.status {
        IntentStatus::RequiresCapture if order.state == OrderState::Pending => {
            if !pays_for_order {
                sqlx::query!(
                    "UPDATE orders SET payment_intent_id = $2 WHERE id = $1",
                    order.id.get(),
                    intent.id.as_str()
                )
                .execute(&mut *conn)
                .await?;
            }
            let authorized =
                step(conn, &order, OrderEvent::Authorize, &cause, json!({ "amount": intent.amount_capturable }))
                    .await?;
            if authorized {
                request_mint(resources, conn, &order).await?;
                close_payments(resources, conn, &order, Some(&intent.id)).await?;
            }
        }
        IntentStatus::RequiresCapture if pays_for_order => {}
        IntentStatus::RequiresCapture => {
            // Paid twice (its own intent and the hosted page), or paid after the order ended.
            tracing::info!(intent = %intent.id, order = %order.public_id, state = %order.state,
                "a second or late authorisation for an order: cancelling it");
            resources.part::<Payments>()?.stripe.cancel(&order.reference()?, &intent.id).await?;
        }
        IntentStatus::Canceled
            if pays_for_order && matches!(order.state, OrderState::Pending | OrderState::Authorized) =>
        {
            step(conn, &order, OrderEvent::Fail, &cause, json!({ "reason": "the payment was cancelled" })).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Closes every way of paying `order` but `keep`: each of its PaymentIntents that is not yet
/// captured or cancelled is cancelled, and its hosted page, if still open, is expired (a page
/// that was paid already has its intent cancelled here too). With `keep = None` (the order
/// expired or failed) nothing stays open.
async fn close_payments(
    resources: &Resources,
    conn: &mut PgConnection,
    order: &CardOrder,
    keep: Option<&PaymentIntentId>,
) -> anyhow::Result<()> {
    let payments = resources.part::<Payments>()?;
    let stripe = &payments.stripe;
    let reference = order.reference()?;
    let mut intents: Vec<String> = sqlx::query_scalar!(
        "SELECT payment_intent_id FROM order_payment_intents WHERE order_id = $1 ORDER BY created_at",
        order.id.get()
    )
    .fetch_all(&mut *conn)
    .await?;
    if let Some(session) = order.checkout_session_id.as_deref() {
        let session = session.parse::<CheckoutSessionId>()?;
        let mut page = stripe.checkout_session(&session).await?;
        if page.status == Some(stripe::SessionStatus::Open) {
            page = match stripe.expire_checkout_session(&reference, &session).await {
                Ok(expired) => expired,
                // Paid or expired meanwhile: read what it is now.
                Err(stripe::Error::UnexpectedState { .. } | stripe::Error::InvalidRequest { .. }) => {
                    stripe.checkout_session(&session).await?
                }
                Err(e) => return Err(e.into()),
            };
        }
        if let Some(intent) = page.payment_intent
            && !intents.iter().any(|known| known == intent.as_str())
        {
            intents.push(intent.as_str().to_owned());
        }
    }
    for intent in intents.iter().filter(|i| keep.is_none_or(|keep| keep.as_str() != i.as_str())) {
        let intent: PaymentIntentId = intent.parse()?;
        let current = stripe.payment_intent(&intent).await?;
        if !matches!(current.status, IntentStatus::Canceled | IntentStatus::Succeeded) {
            stripe.cancel(&reference, &intent).await?;
        }
    }
    Ok(())
}

/// Asks the queue to mint the order's tokens to its wallet (once: the key is the order's).
async fn request_mint(resources: &Resources, conn: &mut PgConnection, order: &CardOrder) -> anyhow::Result<()> {
    let relayer =
        shared::chain::relayer(&resources.config().chain).ok_or_else(|| anyhow::anyhow!("no transaction signer"))?;
    let collection = order
        .collection
        .as_deref()
        .map(Address::try_from)
        .transpose()?
        .ok_or_else(|| anyhow::anyhow!("campaign not deployed"))?;
    let chain_id =
        order.chain_id.and_then(|c| u64::try_from(c).ok()).ok_or_else(|| anyhow::anyhow!("campaign without chain"))?;
    let to = Address::try_from(order.wallet.as_slice())?;
    let call = CampaignNFT::mintCall { to, quantity: U256::from(order.quantity) };
    let request = TxRequest::call(
        IdempotencyKey::new(format!("order-mint:{}", order.public_id))?,
        chain_id,
        relayer,
        collection,
        call.abi_encode().into(),
    )
    .requested_by(Requester::OrderMint)
    .with_context(json!({ "order_id": order.id, "brand_id": order.brand_id }));
    let queued = txqueue::enqueue(conn, &request).await?;
    sqlx::query!("UPDATE orders SET mint_tx_id = $2 WHERE id = $1", order.id.get(), queued.id.get())
        .execute(&mut *conn)
        .await?;
    let cause = format!("tx:{}", queued.id.get());
    let authorized = lock_order(conn, OrderFilter::Id(order.id)).await?.ok_or_else(|| anyhow::anyhow!("order gone"))?;
    step(conn, &authorized, OrderEvent::RequestMint, &cause, json!({ "chain_tx_id": queued.id.get() })).await?;
    Ok(())
}

impl Subscriber for StripeEvents {
    fn name(&self) -> &'static str {
        "payment.stripe"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["stripe.event"]
    }
    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.handle_event(event, conn))
    }
}

/// Follows the mints the card path requested: minted → capture → fulfilled; failed for good →
/// cancel the PaymentIntent, release the units.
pub(crate) struct Mints {
    resources: Resources,
}

impl Mints {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }

    async fn handle_event(&self, event: &OutboxEvent, conn: &mut PgConnection) -> anyhow::Result<()> {
        let Some(id) = event.payload["context"]["order_id"].as_i64().map(OrderId::new) else {
            anyhow::bail!("mint transaction {} without its order id", event.aggregate_id);
        };
        let Some(order) = lock_order(conn, OrderFilter::Id(id)).await? else { return Ok(()) };
        let cause = format!("event:{}", event.id);
        let payments = self.resources.part::<Payments>()?;
        let stripe = &payments.stripe;
        let reference = OrderRef::new(order.public_id, order.brand_id)?;
        let intent: Option<PaymentIntentId> = order.payment_intent_id.as_deref().map(str::parse).transpose()?;
        if Requester::is_confirmed(&event.event_type) {
            step(conn, &order, OrderEvent::MintConfirmed, &cause, json!({ "tx_hash": event.payload["tx_hash"] }))
                .await?;
            let order = lock_order(conn, OrderFilter::Id(id)).await?.ok_or_else(|| anyhow::anyhow!("order gone"))?;
            if order.state == OrderState::Minted {
                let intent = intent.ok_or_else(|| anyhow::anyhow!("card order {id} without a PaymentIntent"))?;
                // What the chain minted is read before the money moves: a node that cannot answer
                // retries the delivery without calling Stripe.
                let first = self.first_minted(&event.payload["tx_hash"], &order).await?;
                // An error here rolls the delivery back and retries it; the key makes the
                // capture happen once at Stripe whatever the number of attempts.
                let captured = stripe.capture(&reference, &intent).await?;
                // A cause of its own: the same cause twice on one order is a replay (a no-op).
                let cause = format!("{cause}:capture");
                step(conn, &order, OrderEvent::Capture, &cause, json!({ "amount": captured.amount_received })).await?;
                sqlx::query!(
                    "UPDATE orders SET fulfilled_at = now(), first_token_id = $2 WHERE id = $1",
                    id.get(),
                    first.map(|first| first.to_string().parse::<bigdecimal::BigDecimal>()).transpose()?
                )
                .execute(&mut *conn)
                .await?;
            }
        } else {
            let reason = Requester::failure_reason(&event.payload).unwrap_or("the mint failed");
            sqlx::query!("UPDATE orders SET failure_reason = $2 WHERE id = $1", id.get(), reason)
                .execute(&mut *conn)
                .await?;
            if step(conn, &order, OrderEvent::MintFailed, &cause, json!({ "reason": reason })).await? {
                close_payments(&self.resources, conn, &order, None).await?;
            }
        }
        Ok(())
    }

    /// The first token the confirmed mint `tx_hash` created for `order`'s wallet: the lowest id
    /// its receipt shows minted there by the collection (the batch is consecutive).
    async fn first_minted(&self, tx_hash: &serde_json::Value, order: &CardOrder) -> anyhow::Result<Option<U256>> {
        let Some(hash) = tx_hash.as_str() else { return Ok(None) };
        let (Some(collection), Ok(wallet)) = (order.collection.as_deref(), Address::try_from(order.wallet.as_slice()))
        else {
            return Ok(None);
        };
        let provider = self.resources.chain().provider();
        let receipt = provider
            .get_transaction_receipt(hash.parse()?)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no receipt for the confirmed mint {hash}"))?;
        Ok(receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address().as_slice() == collection)
            .filter_map(|log| CampaignNFT::Transfer::decode_log(&log.inner).ok())
            .filter(|transfer| transfer.from.is_zero() && transfer.to == wallet)
            .map(|transfer| transfer.tokenId)
            .min())
    }
}

impl Subscriber for Mints {
    fn name(&self) -> &'static str {
        "payment.mints"
    }
    fn event_types(&self) -> &'static [&'static str] {
        Requester::OrderMint.outcomes()
    }
    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.handle_event(event, conn))
    }
}

/// Closes every way of paying an order that expired or failed before it was charged: its
/// PaymentIntents are cancelled and its hosted page expired.
pub(crate) struct Cancellations {
    resources: Resources,
}

impl Cancellations {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }
}

impl Subscriber for Cancellations {
    fn name(&self) -> &'static str {
        "payment.cancellations"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["order.expired", "order.failed"]
    }
    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let Some(order) = lock_order(conn, OrderFilter::Id(OrderId::new(event.aggregate_id))).await? else {
                return Ok(());
            };
            close_payments(&self.resources, conn, &order, None).await
        })
    }
}

/// The refund.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RefundView {
    refund_id: String,
    amount_minor: i64,
    status: String,
}

/// Refunds a fulfilled card order in full (support, admins, brand owners); audited.
#[utoipa::path(post, path = "/brands/{brand_id}/orders/{order_id}/refund", tag = "orders",
    params(("brand_id" = i64, Path), ("order_id" = Uuid, Path)),
    responses(
        (status = 200, body = RefundView),
        (status = 404, body = Problem),
        (status = 409, description = "Not a fulfilled card order", body = Problem),
        (status = 503, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(BrandOrderPath { order_id }): Path<BrandOrderPath>,
) -> ApiResult<Json<RefundView>> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    let id = sqlx::query_scalar!(
        r#"SELECT id AS "id: OrderId" FROM orders WHERE public_id = $1 AND brand_id = $2"#,
        order_id,
        brand.get()
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no order {order_id}")))?;
    let order = lock_order(&mut tx, OrderFilter::Id(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no order {order_id}")))?;
    let method = sqlx::query_scalar!(r#"SELECT method AS "method: PaymentMethod" FROM orders WHERE id = $1"#, id.get())
        .fetch_one(&mut *tx)
        .await?;
    let (true, Some(intent)) =
        (order.state == OrderState::Fulfilled && method == PaymentMethod::Card, order.payment_intent_id.as_deref())
    else {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::NotRefundable,
            detail: format!("a {} {method} order", order.state),
        });
    };
    let intent: PaymentIntentId = intent.parse().map_err(|e: stripe::IdError| ApiError::Internal(e.into()))?;
    let refund =
        state.part::<Payments>()?.stripe.refund(&order_ref(order_id, brand)?, &intent).await.map_err(stripe_error)?;
    let cause = format!("refund:{}", refund.id.as_str());
    step(&mut tx, &order, OrderEvent::Refund, &cause, json!({ "refund": refund.id.as_str() }))
        .await
        .map_err(ApiError::Internal)?;
    let view = RefundView {
        refund_id: refund.id.as_str().to_owned(),
        amount_minor: refund.amount.minor(),
        status: format!("{:?}", refund.status),
    };
    let entry = shared::audit::Entry::new("order.refunded", format!("order:{order_id}")).after(&view);
    shared::audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(Json(view))
}
