//! Stripe: the card path of checkout, through async-stripe.
//!
//! The payment service's saga uses it like this:
//! 1. [`Stripe::create_payment_intent`] (or [`Stripe::create_checkout_session`] for the hosted
//!    page) with **manual capture**: the buyer's card is authorised, not charged.
//! 2. A webhook ([`Stripe::verify_webhook`]) says something changed; the service re-fetches
//!    ([`Stripe::payment_intent`], [`Stripe::checkout_session`]) and acts on the fetched state:
//!    `requires_capture` means the money is secured and the NFT can be minted.
//! 3. Mint confirmed → [`Stripe::capture`]; mint failed for good → [`Stripe::cancel`] (the buyer
//!    is never charged); later returns → [`Stripe::refund`].
//!
//! Every mutating call carries a deterministic idempotency key derived from the order
//! (`order-{id}-pi`, `-capture`, `-cancel`, `-refund`, `-checkout`), so a job that crashed and
//! runs again cannot create a second PaymentIntent or refund twice. Calls are made once
//! (`RequestStrategy::Idempotent`); retrying is the caller's job queue's decision, guided by
//! [`Error::is_retryable`]. Stripe forgets keys after 24 hours, so the service stores the ids it
//! gets back and never relies on the key alone.
//!
//! Results are this module's own small types, not async-stripe's generated ones, so the rest of
//! the platform does not follow the SDK's release-candidate churn.

mod error;
mod http;
mod webhook;

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

use ::stripe::{IdempotencyKey, RequestStrategy, StripeRequest};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionPaymentIntentDataCaptureMethod, ExpireCheckoutSession,
    ProductData, RetrieveCheckoutSession,
};
use stripe_core::{
    event::ListEvent,
    payment_intent::{
        CancelPaymentIntent, CapturePaymentIntent, CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods,
        CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, RetrievePaymentIntent, SearchPaymentIntent,
    },
    refund::CreateRefund,
};

pub use error::{Error, Result};
pub use webhook::{
    EventType, SIGNATURE_HEADER, TOLERANCE_SECS, WebhookError, WebhookEvent, WebhookVerifier, signature_header,
};

use shared::{
    auth::BrandId,
    money::{Currency, Money},
};

use crate::config::StripeConfig;

/// How long one call to Stripe may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a string is not a Stripe id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a Stripe {kind} id (expected `{prefix}…`)")]
pub struct IdError {
    kind: &'static str,
    prefix: &'static str,
    value: String,
}

macro_rules! stripe_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id as Stripe writes it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                let well_formed = value.len() > $prefix.len()
                    && value.len() <= 255
                    && value.starts_with($prefix)
                    && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                match well_formed {
                    true => Ok(Self(value.to_owned())),
                    false => Err(IdError { kind: $kind, prefix: $prefix, value: value.chars().take(64).collect() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

stripe_id!(
    /// A PaymentIntent (`pi_…`).
    PaymentIntentId, "PaymentIntent", "pi_"
);
stripe_id!(
    /// A Checkout Session (`cs_…`).
    CheckoutSessionId, "Checkout Session", "cs_"
);
stripe_id!(
    /// A Refund (`re_…`).
    RefundId, "Refund", "re_"
);
stripe_id!(
    /// An Event (`evt_…`); webhook deliveries are deduplicated on it.
    EventId, "Event", "evt_"
);

/// The order a Stripe object is for: written into its metadata (`order_id`, `brand_id`) and the
/// source of its idempotency keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRef {
    order_id: String,
    brand_id: BrandId,
}

impl OrderRef {
    /// `order_id` is the order's id as the payment service writes it (its `Display`).
    pub fn new(order_id: impl fmt::Display, brand_id: BrandId) -> Result<Self> {
        let order_id = order_id.to_string();
        // Keys are `order-{id}-{action}` and must stay within Stripe's 255 characters.
        if order_id.is_empty() || order_id.len() > 200 || order_id.chars().any(char::is_whitespace) {
            return Err(Error::Config(format!("`{order_id}` cannot identify an order at Stripe")));
        }
        Ok(Self { order_id, brand_id })
    }

    /// The order id, as in the metadata.
    pub fn order_id(&self) -> &str {
        &self.order_id
    }

    /// The brand that sells it.
    pub fn brand_id(&self) -> BrandId {
        self.brand_id
    }

    /// The idempotency key of one action on this order: `order-{id}-{action}`.
    pub fn idempotency_key(&self, action: &str) -> String {
        format!("order-{}-{action}", self.order_id)
    }

    fn strategy(&self, action: &str) -> Result<RequestStrategy> {
        IdempotencyKey::new(self.idempotency_key(action))
            .map(RequestStrategy::Idempotent)
            .map_err(|e| Error::Config(e.to_string()))
    }

    fn metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            ("order_id".to_owned(), self.order_id.clone()),
            ("brand_id".to_owned(), self.brand_id.to_string()),
        ])
    }
}

/// Where a PaymentIntent is in Stripe's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentStatus {
    /// Waiting for a card, or the last attempt failed (see [`PaymentIntent::last_error`]).
    RequiresPaymentMethod,
    /// A card is attached; the intent has not been confirmed.
    RequiresConfirmation,
    /// The buyer must authenticate (3-D Secure) in the front end.
    RequiresAction,
    /// The payment is being processed.
    Processing,
    /// Authorised, not charged: capture it or cancel it. With manual capture this is "paid".
    RequiresCapture,
    /// Cancelled; any authorisation is released. Terminal.
    Canceled,
    /// Captured: the buyer was charged. Terminal (refunds are separate objects).
    Succeeded,
    /// A status this code does not know.
    Unknown(String),
}

impl IntentStatus {
    fn from_stripe(status: &stripe_shared::PaymentIntentStatus) -> Self {
        // The generated enum is non-exhaustive: go by Stripe's names.
        match status.as_str() {
            "requires_payment_method" => Self::RequiresPaymentMethod,
            "requires_confirmation" => Self::RequiresConfirmation,
            "requires_action" => Self::RequiresAction,
            "processing" => Self::Processing,
            "requires_capture" => Self::RequiresCapture,
            "canceled" => Self::Canceled,
            "succeeded" => Self::Succeeded,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// Why the last payment attempt failed, as Stripe reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentError {
    /// e.g. `card_declined`, `expired_card`.
    pub code: Option<String>,
    /// e.g. `generic_decline`, `insufficient_funds`.
    pub decline_code: Option<String>,
    /// A message that can be shown to the buyer.
    pub message: Option<String>,
}

/// A PaymentIntent as the payment service needs it.
#[derive(Debug, Clone)]
pub struct PaymentIntent {
    pub id: PaymentIntentId,
    pub status: IntentStatus,
    /// What the buyer is asked to pay.
    pub amount: Money,
    /// What can still be captured, in minor units (the whole amount in `requires_capture`).
    pub amount_capturable: i64,
    /// What was captured, in minor units.
    pub amount_received: i64,
    /// For the buyer's front end (Stripe.js `confirmCardPayment`); never log it.
    pub client_secret: Option<SecretString>,
    /// The `order_id` and `brand_id` written at creation, and anything else set on it.
    pub metadata: HashMap<String, String>,
    /// The last failed attempt, if the latest one failed.
    pub last_error: Option<PaymentError>,
}

impl PaymentIntent {
    /// The order id from the metadata.
    pub fn order_id(&self) -> Option<&str> {
        self.metadata.get("order_id").map(String::as_str)
    }

    fn from_stripe(pi: stripe_shared::PaymentIntent) -> Result<Self> {
        Ok(Self {
            id: parse_id(pi.id.as_str())?,
            status: IntentStatus::from_stripe(&pi.status),
            amount: Money::new(pi.amount, currency(&pi.currency)?),
            amount_capturable: pi.amount_capturable,
            amount_received: pi.amount_received,
            client_secret: pi.client_secret.map(SecretString::from),
            metadata: pi.metadata,
            last_error: pi.last_payment_error.map(|e| PaymentError {
                code: e.code.map(|c| c.as_str().to_owned()),
                decline_code: e.decline_code,
                message: e.message,
            }),
        })
    }
}

/// Where a Checkout Session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// The buyer has not finished the hosted page.
    Open,
    /// The buyer finished it: with manual capture, the PaymentIntent is `requires_capture`.
    Complete,
    /// It expired unpaid.
    Expired,
}

/// A Checkout Session as the payment service needs it.
#[derive(Debug, Clone)]
pub struct CheckoutSession {
    pub id: CheckoutSessionId,
    /// The hosted payment page to send the buyer to (while open).
    pub url: Option<String>,
    pub status: Option<SessionStatus>,
    /// Set once the buyer has paid on the page. Decide on this PaymentIntent's status, never on
    /// the session's `payment_status` (with manual capture an authorised session may still say
    /// `unpaid`).
    pub payment_intent: Option<PaymentIntentId>,
    /// The total in minor units.
    pub amount_total: Option<i64>,
    pub metadata: HashMap<String, String>,
    pub expires_at: i64,
}

impl CheckoutSession {
    /// The order id from the metadata.
    pub fn order_id(&self) -> Option<&str> {
        self.metadata.get("order_id").map(String::as_str)
    }

    fn from_stripe(session: stripe_shared::CheckoutSession) -> Result<Self> {
        Ok(Self {
            id: parse_id(session.id.as_str())?,
            url: session.url,
            status: session.status.and_then(|status| match status.as_str() {
                "open" => Some(SessionStatus::Open),
                "complete" => Some(SessionStatus::Complete),
                "expired" => Some(SessionStatus::Expired),
                _ => None,
            }),
            payment_intent: session.payment_intent.map(|pi| parse_id(pi.id().as_str())).transpose()?,
            amount_total: session.amount_total,
            metadata: session.metadata.unwrap_or_default(),
            expires_at: session.expires_at,
        })
    }
}

/// What a hosted Checkout page sells: one line, one unit, the order's total.
#[derive(Debug, Clone)]
pub struct CheckoutRequest<'a> {
    pub order: &'a OrderRef,
    pub amount: Money,
    /// The line shown on the page, e.g. the campaign's collection name.
    pub product_name: &'a str,
    /// Where the buyer lands after paying; `{CHECKOUT_SESSION_ID}` is replaced by Stripe.
    pub success_url: &'a str,
    /// Where the "back" link goes.
    pub cancel_url: &'a str,
    /// When the page stops accepting payment (Stripe: 30 minutes to 24 hours from now).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A refund's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    RequiresAction,
    Succeeded,
    Failed,
    Canceled,
    Unknown(String),
}

/// A refund as the payment service needs it.
#[derive(Debug, Clone)]
pub struct Refund {
    pub id: RefundId,
    pub amount: Money,
    pub status: RefundStatus,
    pub payment_intent: Option<PaymentIntentId>,
}

impl Refund {
    fn from_stripe(refund: stripe_shared::Refund) -> Result<Self> {
        Ok(Self {
            id: parse_id(refund.id.as_str())?,
            amount: Money::new(refund.amount, currency(&refund.currency)?),
            status: match refund.status.as_deref() {
                Some("pending") => RefundStatus::Pending,
                Some("requires_action") => RefundStatus::RequiresAction,
                Some("succeeded") => RefundStatus::Succeeded,
                Some("failed") => RefundStatus::Failed,
                Some("canceled") => RefundStatus::Canceled,
                other => RefundStatus::Unknown(other.unwrap_or_default().to_owned()),
            },
            payment_intent: refund.payment_intent.map(|pi| parse_id(pi.id().as_str())).transpose()?,
        })
    }
}

/// An event as listed by [`Stripe::events`] (for reconciliation of missed webhooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    pub id: EventId,
    pub event_type: EventType,
    pub created: i64,
}

/// The Stripe API client the payment service uses; cheap to clone.
#[derive(Clone)]
pub struct Stripe {
    client: Option<http::Http>,
    webhooks: Option<WebhookVerifier>,
}

impl fmt::Debug for Stripe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stripe")
            .field("configured", &self.client.is_some())
            .field("webhooks", &self.webhooks.is_some())
            .finish()
    }
}

impl Stripe {
    /// A client for the configured account and API base. Without a secret key (allowed locally
    /// only) every call fails with [`Error::NotConfigured`]; without a webhook secret every
    /// delivery fails with [`WebhookError::NotConfigured`].
    pub fn new(config: &StripeConfig) -> Result<Self> {
        shared::chain::install_crypto_provider();
        let client = config
            .secret_key
            .as_ref()
            .map(|key| {
                // Paths are appended as `v1/…`: the base needs its trailing slash.
                let mut base = config.api_base.to_string();
                if !base.ends_with('/') {
                    base.push('/');
                }
                http::Http::new(key.expose_secret(), base, REQUEST_TIMEOUT)
            })
            .transpose()?;
        Ok(Self { client, webhooks: config.webhook_secret.clone().map(WebhookVerifier::new) })
    }

    fn client(&self) -> Result<&http::Http> {
        self.client.as_ref().ok_or(Error::NotConfigured)
    }

    /// Creates the order's PaymentIntent with manual capture (idempotency key `order-{id}-pi`).
    ///
    /// Without `confirm_with` it waits for the buyer's front end (its `client_secret`). With a
    /// PaymentMethod id (server-side flows and tests: `pm_card_visa`) it is confirmed at once: a
    /// good card leaves it in `requires_capture`, a declined one fails with a card error (the
    /// intent stays in `requires_payment_method`, the buyer is not charged).
    #[tracing::instrument(skip_all, fields(order.id = %order.order_id, amount = %amount), err)]
    pub async fn create_payment_intent(
        &self,
        order: &OrderRef,
        amount: Money,
        confirm_with: Option<&str>,
    ) -> Result<PaymentIntent> {
        if amount.minor() <= 0 {
            return Err(Error::Config(format!("cannot charge {amount}")));
        }
        let mut automatic = CreatePaymentIntentAutomaticPaymentMethods::new(true);
        // Cards only in practice: no redirect-based method, so a server-side confirm needs no return URL.
        automatic.allow_redirects = Some(CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never);
        let mut request = CreatePaymentIntent::new(amount.minor(), stripe_currency(amount.currency()))
            .capture_method(stripe_shared::PaymentIntentCaptureMethod::Manual)
            .automatic_payment_methods(automatic)
            .metadata(order.metadata());
        if let Some(payment_method) = confirm_with {
            request = request.payment_method(payment_method).confirm(true);
        }
        let pi = request.customize().request_strategy(order.strategy("pi")?).send(self.client()?).await?;
        PaymentIntent::from_stripe(pi)
    }

    /// The PaymentIntent as Stripe has it now: the truth to act on after a webhook.
    #[tracing::instrument(skip_all, fields(stripe.pi = %id), err)]
    pub async fn payment_intent(&self, id: &PaymentIntentId) -> Result<PaymentIntent> {
        PaymentIntent::from_stripe(RetrievePaymentIntent::new(id.as_str()).send(self.client()?).await?)
    }

    /// Captures the whole authorised amount (key `order-{id}-capture`): the buyer is charged.
    #[tracing::instrument(skip_all, fields(order.id = %order.order_id, stripe.pi = %id), err)]
    pub async fn capture(&self, order: &OrderRef, id: &PaymentIntentId) -> Result<PaymentIntent> {
        let request = CapturePaymentIntent::new(id.as_str());
        let pi = request.customize().request_strategy(order.strategy("capture")?).send(self.client()?).await?;
        PaymentIntent::from_stripe(pi)
    }

    /// Cancels the PaymentIntent (key `order-{id}-cancel-{pi}`: an order may have more than one,
    /// e.g. its own and its hosted page's): an authorisation is released and the buyer is never
    /// charged. Fails with [`Error::UnexpectedState`] once captured (refund instead).
    #[tracing::instrument(skip_all, fields(order.id = %order.order_id, stripe.pi = %id), err)]
    pub async fn cancel(&self, order: &OrderRef, id: &PaymentIntentId) -> Result<PaymentIntent> {
        let request = CancelPaymentIntent::new(id.as_str());
        let strategy = order.strategy(&format!("cancel-{id}"))?;
        let pi = request.customize().request_strategy(strategy).send(self.client()?).await?;
        PaymentIntent::from_stripe(pi)
    }

    /// One page (up to 100) of the account's PaymentIntents that are authorised and neither
    /// captured nor cancelled, with the cursor of the next page: the reconciliation's safety net
    /// looks for any that belongs to no live order. Search is eventually consistent (Stripe
    /// indexes within about a minute), which is fine for a sweep that runs every minute.
    #[tracing::instrument(skip_all, err)]
    pub async fn authorised_intents(&self, page: Option<&str>) -> Result<(Vec<PaymentIntent>, Option<String>)> {
        let mut search = SearchPaymentIntent::new("status:'requires_capture'").limit(100);
        if let Some(page) = page {
            search = search.page(page);
        }
        let found = search.send(self.client()?).await?;
        let intents = found.data.into_iter().map(PaymentIntent::from_stripe).collect::<Result<Vec<_>>>()?;
        Ok((intents, found.next_page.filter(|_| found.has_more)))
    }

    /// Closes an open hosted page (key `order-{id}-checkout-expire`) so it can no longer be paid:
    /// the order was paid another way, or is over. Expiring a session that is already complete or
    /// expired fails with [`Error::UnexpectedState`], which callers treat as done.
    #[tracing::instrument(skip_all, fields(order.id = %order.order_id, stripe.session = %id), err)]
    pub async fn expire_checkout_session(&self, order: &OrderRef, id: &CheckoutSessionId) -> Result<CheckoutSession> {
        let request = ExpireCheckoutSession::new(id.as_str());
        let strategy = order.strategy("checkout-expire")?;
        CheckoutSession::from_stripe(request.customize().request_strategy(strategy).send(self.client()?).await?)
    }

    /// Refunds a captured PaymentIntent in full (key `order-{id}-refund`, so one refund per order).
    #[tracing::instrument(skip_all, fields(order.id = %order.order_id, stripe.pi = %id), err)]
    pub async fn refund(&self, order: &OrderRef, id: &PaymentIntentId) -> Result<Refund> {
        let request = CreateRefund::new().payment_intent(id.as_str()).metadata(order.metadata());
        let refund = request.customize().request_strategy(order.strategy("refund")?).send(self.client()?).await?;
        Refund::from_stripe(refund)
    }

    /// Creates a hosted Checkout page for the order (key `order-{id}-checkout`), in payment mode
    /// with manual capture; the order's metadata goes on the session and on its PaymentIntent.
    #[tracing::instrument(skip_all, fields(order.id = %request.order.order_id, amount = %request.amount), err)]
    pub async fn create_checkout_session(&self, request: &CheckoutRequest<'_>) -> Result<CheckoutSession> {
        let order = request.order;
        let mut price = CreateCheckoutSessionLineItemsPriceData::new(stripe_currency(request.amount.currency()));
        price.unit_amount = Some(request.amount.minor());
        price.product_data = Some(ProductData::new(request.product_name));
        let line = CreateCheckoutSessionLineItems { price_data: Some(price), quantity: Some(1), ..Default::default() };
        let mut intent_data = CreateCheckoutSessionPaymentIntentData::new();
        intent_data.capture_method = Some(CreateCheckoutSessionPaymentIntentDataCaptureMethod::Manual);
        intent_data.metadata = Some(order.metadata());
        let mut create = CreateCheckoutSession::new()
            .mode(stripe_checkout::CheckoutSessionMode::Payment)
            .line_items(vec![line])
            .payment_intent_data(intent_data)
            .client_reference_id(order.order_id.clone())
            .metadata(order.metadata())
            .success_url(request.success_url)
            .cancel_url(request.cancel_url);
        if let Some(expires_at) = request.expires_at {
            create = create.expires_at(expires_at.timestamp());
        }
        let session = create.customize().request_strategy(order.strategy("checkout")?).send(self.client()?).await?;
        CheckoutSession::from_stripe(session)
    }

    /// The Checkout Session as Stripe has it now (to find its PaymentIntent once complete).
    #[tracing::instrument(skip_all, fields(stripe.session = %id), err)]
    pub async fn checkout_session(&self, id: &CheckoutSessionId) -> Result<CheckoutSession> {
        CheckoutSession::from_stripe(RetrieveCheckoutSession::new(id.as_str()).send(self.client()?).await?)
    }

    /// The latest events (newest first, at most `limit` ≤ 100) of the given types, only those
    /// whose webhook delivery failed when `undelivered_only`: a reconciliation job replays them
    /// in case a webhook was missed.
    #[tracing::instrument(skip_all, err)]
    pub async fn events(&self, types: &[EventType], undelivered_only: bool, limit: u8) -> Result<Vec<EventSummary>> {
        let mut list = ListEvent::new().limit(i64::from(limit.clamp(1, 100)));
        if !types.is_empty() {
            list = list.types(types.iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>());
        }
        if undelivered_only {
            list = list.delivery_success(false);
        }
        let page = list.send(self.client()?).await?;
        page.data
            .into_iter()
            .map(|event| {
                Ok(EventSummary {
                    id: parse_id(event.id.as_str())?,
                    event_type: EventType::parse(event.type_.as_str()),
                    created: event.created,
                })
            })
            .collect()
    }

    /// Verifies a webhook delivery (see [`WebhookVerifier::verify`]).
    pub fn verify_webhook(
        &self,
        payload: &[u8],
        signature_header: &str,
        now: DateTime<Utc>,
    ) -> Result<WebhookEvent, WebhookError> {
        self.webhooks.as_ref().ok_or(WebhookError::NotConfigured)?.verify(payload, signature_header, now)
    }
}

fn parse_id<T: FromStr<Err = IdError>>(id: &str) -> Result<T> {
    id.parse().map_err(|e: IdError| Error::Decode(e.to_string()))
}

/// Stripe writes currency codes in lower case.
fn stripe_currency(currency: Currency) -> stripe_types::Currency {
    // Infallible: unknown codes become `Currency::Unknown`, which Stripe then refuses.
    stripe_types::Currency::from_str(&currency.code().to_ascii_lowercase()).unwrap_or_else(|never| match never {})
}

fn currency(currency: &stripe_types::Currency) -> Result<Currency> {
    currency.to_string().to_ascii_uppercase().parse().map_err(|e| Error::Decode(format!("currency: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn idempotency_keys_are_derived_from_the_order() {
        let order = OrderRef::new("0190f3a2-7c4e-7000-8000-000000000001", BrandId::new(7)).unwrap();
        assert_eq!(order.idempotency_key("pi"), "order-0190f3a2-7c4e-7000-8000-000000000001-pi");
        assert_eq!(order.idempotency_key("capture"), "order-0190f3a2-7c4e-7000-8000-000000000001-capture");
        assert_eq!(order.metadata()["brand_id"], "7");
        assert!(OrderRef::new("", BrandId::new(7)).is_err());
        assert!(OrderRef::new("x".repeat(201), BrandId::new(7)).is_err());
    }

    #[test]
    fn ids_must_carry_their_stripe_prefix() {
        assert_eq!("pi_123".parse::<PaymentIntentId>().unwrap().as_str(), "pi_123");
        assert!("cs_123".parse::<PaymentIntentId>().is_err());
        assert!("pi_".parse::<PaymentIntentId>().is_err());
        assert!("pi_1;drop".parse::<PaymentIntentId>().is_err());
        assert!("cs_test_a1".parse::<CheckoutSessionId>().is_ok());
        let json = serde_json::to_string(&"evt_9".parse::<EventId>().unwrap()).unwrap();
        assert_eq!(json, r#""evt_9""#);
        assert!(serde_json::from_str::<RefundId>(r#""pi_1""#).is_err());
    }

    #[test]
    fn currencies_cross_in_stripes_lower_case_and_back() {
        assert_eq!(stripe_currency(Currency::USD), stripe_types::Currency::USD);
        assert_eq!(stripe_currency(Currency::JPY).to_string(), "jpy");
        assert_eq!(currency(&stripe_types::Currency::EUR).unwrap(), Currency::EUR);
    }

    #[tokio::test]
    async fn without_a_secret_key_card_payments_are_refused_clearly() {
        let config = StripeConfig {
            secret_key: None,
            api_base: "https://api.stripe.com".parse().unwrap(),
            webhook_secret: None,
        };
        let stripe = Stripe::new(&config).unwrap();
        let err = stripe.payment_intent(&"pi_1".parse().unwrap()).await.unwrap_err();
        assert!(matches!(err, Error::NotConfigured) && !err.is_retryable(), "{err}");
        assert!(err.to_string().contains("STRIPE_SECRET_KEY"));
        let err = stripe.verify_webhook(b"{}", "t=1,v1=00", Utc::now()).unwrap_err();
        assert_eq!(err, WebhookError::NotConfigured);
    }
}
