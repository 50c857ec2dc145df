//! What can go wrong talking to Stripe, sorted so the caller can decide: retry, or give up.

use stripe_shared::{ApiErrors, ApiErrorsType};

use super::PaymentIntentId;

/// A failed Stripe call.
///
/// [`Error::is_retryable`] tells a job whether running it again (with the same idempotency key,
/// which every mutating call here uses) can succeed; everything else is permanent for this
/// request and needs a person, a different card, or a re-fetch of the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Stripe secret key is configured (allowed locally only): card payments are off.
    #[error("card payments are not configured: STRIPE_SECRET_KEY is empty")]
    NotConfigured,
    /// The issuer declined the card (`card_declined`, any decline code but insufficient funds).
    /// The PaymentIntent is back in `requires_payment_method`; the buyer was not charged.
    #[error("the card was declined ({})", decline_code.as_deref().unwrap_or("no decline code"))]
    CardDeclined { decline_code: Option<String>, message: String, payment_intent: Option<PaymentIntentId> },
    /// The card was declined for insufficient funds (`decline_code: insufficient_funds`).
    #[error("the card has insufficient funds")]
    InsufficientFunds { message: String, payment_intent: Option<PaymentIntentId> },
    /// Another card error (`expired_card`, `incorrect_cvc`, `processing_error`, …).
    #[error("card error `{code}`: {message}")]
    Card { code: String, message: String, payment_intent: Option<PaymentIntentId> },
    /// The idempotency key was used before with other parameters: a bug in the caller, never
    /// fixed by retrying.
    #[error("idempotency key reused with different parameters: {message}")]
    IdempotencyConflict { message: String },
    /// The object is not in a state that allows the call (`payment_intent_unexpected_state`,
    /// `charge_already_refunded`, …): re-fetch it and act on what it is now.
    #[error("unexpected state (`{code}`): {message}")]
    UnexpectedState { code: String, message: String },
    /// No such object (`resource_missing`).
    #[error("not found: {message}")]
    NotFound { message: String },
    /// Stripe refused the request as invalid (a bug or a misconfiguration).
    #[error("invalid request ({status}, {}): {message}", code.as_deref().unwrap_or("no code"))]
    InvalidRequest { status: u16, code: Option<String>, message: String },
    /// The secret key was refused (401/403): a configuration error.
    #[error("Stripe refused the API key: {message}")]
    Authentication { message: String },
    /// Too many requests, or a lock held by a concurrent request (429, 409): retry later.
    #[error("Stripe asked to slow down ({status}): {message}")]
    RateLimited { status: u16, message: String },
    /// Stripe failed (5xx). The outcome is unknown: re-fetch the object before deciding; a retry
    /// with the same key may replay the same error, since Stripe stores 500s too.
    #[error("Stripe failed ({status}): {message}")]
    Unavailable { status: u16, message: String },
    /// The request did not get an answer (connection refused, reset, TLS). The outcome is unknown;
    /// a retry with the same idempotency key is safe.
    #[error("could not reach Stripe: {0}")]
    Network(String),
    /// No answer in time; as for [`Error::Network`].
    #[error("Stripe did not answer in time")]
    Timeout,
    /// Stripe's answer could not be understood (an API version or emulator mismatch).
    #[error("could not read Stripe's answer: {0}")]
    Decode(String),
    /// The client could not be built, or an argument cannot be sent (an empty order id).
    #[error("Stripe client configuration: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the same call, repeated later with the same idempotency key, may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Unavailable { .. } | Error::Network(_) | Error::Timeout => true,
            Error::NotConfigured
            | Error::CardDeclined { .. }
            | Error::InsufficientFunds { .. }
            | Error::Card { .. }
            | Error::IdempotencyConflict { .. }
            | Error::UnexpectedState { .. }
            | Error::NotFound { .. }
            | Error::InvalidRequest { .. }
            | Error::Authentication { .. }
            | Error::Decode(_)
            | Error::Config(_) => false,
        }
    }

    /// Whether the buyer's card was refused: show it to the buyer, let them try another card.
    pub fn is_card_error(&self) -> bool {
        matches!(self, Error::CardDeclined { .. } | Error::InsufficientFunds { .. } | Error::Card { .. })
    }

    /// A stable machine-readable code for logs, outbox events and problem responses.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotConfigured => "stripe_not_configured",
            Error::CardDeclined { .. } => "card_declined",
            Error::InsufficientFunds { .. } => "insufficient_funds",
            Error::Card { .. } => "card_error",
            Error::IdempotencyConflict { .. } => "idempotency_error",
            Error::UnexpectedState { .. } => "unexpected_state",
            Error::NotFound { .. } => "resource_missing",
            Error::InvalidRequest { .. } => "invalid_request",
            Error::Authentication { .. } => "authentication_error",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable { .. } => "stripe_unavailable",
            Error::Network(_) => "network_error",
            Error::Timeout => "timeout",
            Error::Decode(_) => "decode_error",
            Error::Config(_) => "config_error",
        }
    }
}

/// Codes Stripe uses when an object is not in a state that allows the call.
const STATE_CODES: &[&str] = &[
    "payment_intent_unexpected_state",
    "charge_already_refunded",
    "charge_already_captured",
    "charge_expired_for_capture",
    "checkout_session_unexpected_state",
];

impl From<::stripe::StripeError> for Error {
    fn from(err: ::stripe::StripeError) -> Self {
        use ::stripe::StripeError as S;
        match err {
            S::Stripe(api, status) => from_api(&api, status),
            S::JSONDeserialize(message) => Error::Decode(message),
            S::ClientError(message) => Error::Network(message),
            S::ConfigError(message) => Error::Config(message),
            S::Timeout => Error::Timeout,
        }
    }
}

fn from_api(api: &ApiErrors, status: u16) -> Error {
    let message = api.message.clone().unwrap_or_default();
    let code = api.code.as_ref().map(|code| code.as_str().to_owned());
    let payment_intent = api.payment_intent.as_ref().and_then(|pi| pi.id.as_str().parse().ok());
    match (&api.type_, code.as_deref(), status) {
        (ApiErrorsType::CardError, _, _) => {
            let decline_code = api.decline_code.clone();
            match (code.as_deref(), decline_code.as_deref()) {
                (Some("insufficient_funds"), _) | (_, Some("insufficient_funds")) => {
                    Error::InsufficientFunds { message, payment_intent }
                }
                (Some("card_declined"), _) => Error::CardDeclined { decline_code, message, payment_intent },
                (other, _) => Error::Card { code: other.unwrap_or("card_error").to_owned(), message, payment_intent },
            }
        }
        (ApiErrorsType::IdempotencyError, _, _) => Error::IdempotencyConflict { message },
        (_, _, 401 | 403) => Error::Authentication { message },
        (_, _, 409 | 429) | (_, Some("rate_limit" | "lock_timeout"), _) => Error::RateLimited { status, message },
        (_, _, 500..) | (ApiErrorsType::ApiError, _, _) => Error::Unavailable { status, message },
        (_, Some(code), _) if STATE_CODES.contains(&code) => Error::UnexpectedState { code: code.to_owned(), message },
        (_, Some("resource_missing"), _) | (_, _, 404) => Error::NotFound { message },
        _ => Error::InvalidRequest { status, code, message },
    }
}
