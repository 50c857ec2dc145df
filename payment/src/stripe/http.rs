//! async-stripe's requests sent through reqwest, keeping connections to Stripe open.
//!
//! async-stripe's own hyper client is built with `pool_max_idle_per_host(0)`: every call opens
//! a new TCP and TLS connection to api.stripe.com (a round trip or three before the request
//! leaves, on every PaymentIntent, capture and re-fetch). It does so because Stripe may close an
//! idle connection just as a request is written to it (wyyerd/stripe-rs#176). This client keeps
//! idle connections (reqwest's pool, dropped after [`IDLE`]) and stays safe with it: every
//! request is sent once, every mutating one carries its idempotency key, and the callers retry
//! a failed call with the same key through their job queues ([`super::Error::is_retryable`]).
//!
//! It implements the crate's `StripeClient` extension point, so requests are still built and
//! answers still parsed by async-stripe's generated code.

use std::time::Duration;

use ::stripe::StripeError;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use stripe_client_core::{CustomizedStripeRequest, StripeClient, StripeMethod};

/// An idle connection is closed after this long (well before Stripe's own idle timeout).
const IDLE: Duration = Duration::from_secs(30);

/// Sends async-stripe's requests; cheap to clone (one connection pool).
#[derive(Clone, Debug)]
pub(super) struct Http {
    client: reqwest::Client,
    /// Ends with `/`; paths are appended as `v1/...`.
    base: String,
}

impl Http {
    pub(super) fn new(secret_key: &str, base: String, timeout: Duration) -> Result<Self, StripeError> {
        let header = |value: String| {
            let mut value = HeaderValue::try_from(value).map_err(|e| StripeError::ConfigError(e.to_string()))?;
            value.set_sensitive(true);
            Ok::<_, StripeError>(value)
        };
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, header(format!("Bearer {secret_key}"))?);
        headers.insert("stripe-version", HeaderValue::from_static(stripe_shared::version::VERSION.as_str()));
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("brandmint/", env!("CARGO_PKG_VERSION"))));
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .pool_idle_timeout(IDLE)
            .build()
            .map_err(|e| StripeError::ConfigError(e.to_string()))?;
        Ok(Self { client, base })
    }
}

impl StripeClient for Http {
    type Err = StripeError;

    async fn execute(&self, request: CustomizedStripeRequest) -> Result<Bytes, StripeError> {
        let (request, config) = request.into_pieces();
        let mut url = format!("{}v1{}", self.base, request.path);
        if let Some(query) = request.query {
            url.push('?');
            url.push_str(&query);
        }
        let method = match request.method {
            StripeMethod::Get => reqwest::Method::GET,
            StripeMethod::Post => reqwest::Method::POST,
            StripeMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client.request(method, url);
        if let Some(key) = config.request_strategy.and_then(|strategy| strategy.get_key()) {
            builder = builder.header("idempotency-key", key.as_str());
        }
        if let Some(timeout) = config.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(body) = request.body {
            builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body);
        }
        let response = builder.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(body);
        }
        let text = std::str::from_utf8(&body).map_err(|_| StripeError::JSONDeserialize("a non-UTF-8 error".into()))?;
        match miniserde::json::from_str::<stripe_shared::Error>(text) {
            Ok(error) => Err(StripeError::Stripe(error.error, status.as_u16())),
            Err(_) => Err(StripeError::JSONDeserialize(format!("HTTP {status} without a Stripe error body"))),
        }
    }
}

fn transport(error: reqwest::Error) -> StripeError {
    if error.is_timeout() { StripeError::Timeout } else { StripeError::ClientError(error.to_string()) }
}
