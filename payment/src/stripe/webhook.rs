//! Stripe webhook signatures: verifying what Stripe sends, and signing like Stripe (the emulator).
//!
//! Stripe's scheme (docs.stripe.com/webhooks, "verify signatures manually"): the
//! `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`; each `v1` is
//! HMAC-SHA256, keyed with the endpoint's `whsec_…` secret, over `"{t}.{raw body}"`. Any one
//! matching `v1` is enough (several appear while a secret is rolled), other schemes are ignored
//! (no downgrade), the comparison is constant-time, and the timestamp must be within 300 s of
//! now: in both directions, like async-stripe, so a far-future `t` cannot be replayed later.
//!
//! This is done here rather than with `async-stripe-webhook`'s `construct_event`: that parses the
//! whole payload into typed objects, which fails when the endpoint's API version differs from the
//! SDK's (async-stripe#347, #482) and would turn a genuine event into a 400. The payment service
//! only needs the event id (for deduplication), its type and the object's id: it re-fetches the
//! object from Stripe before acting, because events arrive late, twice and out of order.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// How far a signature's timestamp may be from now (Stripe's SDKs' default: 5 minutes).
pub const TOLERANCE_SECS: i64 = 300;

/// The header Stripe signs deliveries in.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Why a webhook delivery was refused. Every variant means "answer 400 and do nothing".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No webhook secret is configured (locally): Stripe webhooks are refused.
    #[error("Stripe webhooks are not configured: STRIPE_WEBHOOK_SECRET is empty")]
    NotConfigured,
    /// The `Stripe-Signature` header is not `t=…,v1=…` (no timestamp, or no `v1` signature).
    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(&'static str),
    /// No `v1` signature matches the payload: forged, altered, or signed with another secret.
    #[error("no valid signature for this payload")]
    BadSignature,
    /// The signature is genuine but its timestamp is more than 5 minutes from now: a replay.
    #[error("signature timestamp {timestamp} is outside the 300 s tolerance (now {now})")]
    StaleTimestamp { timestamp: i64, now: i64 },
    /// Correctly signed, but not an event we can read. Stripe sent it, so keep the raw body and
    /// alert rather than drop it silently.
    #[error("signed payload is not a Stripe event: {0}")]
    MalformedPayload(String),
}

/// What a verified delivery says: enough to deduplicate and to re-fetch the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `evt_…`: deliveries of the same event share it (deduplicate on it).
    pub id: super::EventId,
    /// The event type, e.g. `payment_intent.amount_capturable_updated`.
    pub event_type: EventType,
    /// The id of the object the event is about (`pi_…`, `cs_…`, `ch_…`, `re_…`).
    pub object_id: String,
    /// The object's kind as Stripe names it (`payment_intent`, `checkout.session`, `charge`, …).
    pub object_type: String,
    /// When Stripe created the event (not when it was delivered), Unix seconds.
    pub created: i64,
    /// Whether it is a live-mode event (false for test mode and the emulator).
    pub livemode: bool,
}

/// The event types the card path cares about; anything else is kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The PaymentIntent was created.
    PaymentIntentCreated,
    /// Funds are authorised and can be captured (manual capture: `requires_capture`).
    PaymentIntentAmountCapturableUpdated,
    /// The payment was captured (or completed with automatic capture).
    PaymentIntentSucceeded,
    /// The PaymentIntent was cancelled; an authorisation is released.
    PaymentIntentCanceled,
    /// A payment attempt failed (declined); the PaymentIntent can be retried with another card.
    PaymentIntentPaymentFailed,
    /// The buyer finished a Checkout Session (with manual capture: authorised, not captured).
    CheckoutSessionCompleted,
    /// A Checkout Session expired unpaid.
    CheckoutSessionExpired,
    /// A charge was captured.
    ChargeCaptured,
    /// A charge was refunded, fully or partly.
    ChargeRefunded,
    /// A refund was created.
    RefundCreated,
    /// A refund changed status.
    RefundUpdated,
    /// Any other type, by its Stripe name.
    Other(String),
}

impl EventType {
    const NAMED: &[(EventType, &'static str)] = &[
        (EventType::PaymentIntentCreated, "payment_intent.created"),
        (EventType::PaymentIntentAmountCapturableUpdated, "payment_intent.amount_capturable_updated"),
        (EventType::PaymentIntentSucceeded, "payment_intent.succeeded"),
        (EventType::PaymentIntentCanceled, "payment_intent.canceled"),
        (EventType::PaymentIntentPaymentFailed, "payment_intent.payment_failed"),
        (EventType::CheckoutSessionCompleted, "checkout.session.completed"),
        (EventType::CheckoutSessionExpired, "checkout.session.expired"),
        (EventType::ChargeCaptured, "charge.captured"),
        (EventType::ChargeRefunded, "charge.refunded"),
        (EventType::RefundCreated, "refund.created"),
        (EventType::RefundUpdated, "refund.updated"),
    ];

    /// Stripe's name for it, e.g. `payment_intent.succeeded`.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Other(name) => name,
            known => Self::NAMED.iter().find(|(t, _)| t == known).map_or("", |(_, name)| name),
        }
    }

    /// The type Stripe names `name`.
    pub fn parse(name: &str) -> EventType {
        Self::NAMED
            .iter()
            .find(|(_, n)| *n == name)
            .map_or_else(|| EventType::Other(name.to_owned()), |(t, _)| t.clone())
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks deliveries against one endpoint's signing secret.
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    secret: SecretString,
}

impl WebhookVerifier {
    /// A verifier for the endpoint whose signing secret (`whsec_…`) is `secret`.
    pub fn new(secret: SecretString) -> Self {
        Self { secret }
    }

    /// Verifies a delivery: `payload` is the raw request body exactly as received (never
    /// re-serialised JSON) and `signature_header` the `Stripe-Signature` header.
    ///
    /// The checks run in Stripe's order (header, signature, timestamp, payload), so
    /// [`WebhookError::MalformedPayload`] implies a genuine, fresh signature.
    pub fn verify(
        &self,
        payload: &[u8],
        signature_header: &str,
        now: DateTime<Utc>,
    ) -> Result<WebhookEvent, WebhookError> {
        let header = parse_header(signature_header)?;
        let expected = mac(self.secret.expose_secret(), header.timestamp, payload);
        // `verify_slice` compares in constant time.
        let genuine = header.v1.iter().any(|candidate| {
            alloy::hex::decode(candidate).is_ok_and(|bytes| expected.clone().verify_slice(&bytes).is_ok())
        });
        if !genuine {
            return Err(WebhookError::BadSignature);
        }
        let now = now.timestamp();
        // `abs_diff`: a signed `t` near i64::MIN or MAX must not overflow (a panic in debug
        // builds, and in release `(now - t).abs()` could wrap to i64::MIN and pass as fresh).
        if now.abs_diff(header.timestamp) > TOLERANCE_SECS.unsigned_abs() {
            return Err(WebhookError::StaleTimestamp { timestamp: header.timestamp, now });
        }
        parse_event(payload)
    }
}

/// The `Stripe-Signature` value Stripe would send for `payload` at `timestamp`:
/// `t={timestamp},v1={hex HMAC-SHA256(secret, "{timestamp}.{payload}")}`.
pub fn signature_header(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let signature = mac(secret, timestamp, payload).finalize().into_bytes();
    format!("t={timestamp},v1={}", alloy::hex::encode(signature))
}

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

struct Header<'a> {
    timestamp: i64,
    v1: Vec<&'a str>,
}

fn parse_header(header: &str) -> Result<Header<'_>, WebhookError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for pair in header.split(',') {
        let Some((key, value)) = pair.trim().split_once('=') else { continue };
        match key {
            "t" => {
                let t = value.parse().map_err(|_| WebhookError::MalformedHeader("the timestamp is not a number"))?;
                timestamp = Some(t);
            }
            "v1" => v1.push(value),
            // v0 and future schemes are ignored, so a forged v0 cannot downgrade the check.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedHeader("no timestamp"))?;
    if v1.is_empty() {
        return Err(WebhookError::MalformedHeader("no v1 signature"));
    }
    Ok(Header { timestamp, v1 })
}

#[derive(serde::Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    data: RawData,
}

#[derive(serde::Deserialize)]
struct RawData {
    object: RawObject,
}

#[derive(serde::Deserialize)]
struct RawObject {
    id: String,
    object: String,
}

fn parse_event(payload: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let raw: RawEvent = serde_json::from_slice(payload).map_err(|e| WebhookError::MalformedPayload(e.to_string()))?;
    Ok(WebhookEvent {
        id: raw.id.parse().map_err(|e: super::IdError| WebhookError::MalformedPayload(e.to_string()))?,
        event_type: EventType::parse(&raw.event_type),
        object_id: raw.data.object.id,
        object_type: raw.data.object.object,
        created: raw.created,
        livemode: raw.livemode,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const PAYLOAD: &[u8] = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1700000000,"livemode":false,"data":{"object":{"id":"pi_1","object":"payment_intent"}}}"#;

    fn verifier() -> WebhookVerifier {
        WebhookVerifier::new(SECRET.to_owned().into())
    }

    fn at(t: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(t, 0).unwrap()
    }

    #[test]
    fn the_signature_is_stripes_documented_hmac_of_timestamp_dot_payload() {
        // Independently computed: printf '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test_secret
        let header = signature_header(SECRET, 1_700_000_000, br#"{"id":"evt_1"}"#);
        assert_eq!(header, "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a");
    }

    #[test]
    fn a_genuine_fresh_delivery_yields_the_event_id_type_and_object() {
        let header = signature_header(SECRET, 1_700_000_000, PAYLOAD);
        let event = verifier().verify(PAYLOAD, &header, at(1_700_000_100)).unwrap();
        assert_eq!(event.id.as_str(), "evt_1");
        assert_eq!(event.event_type, EventType::PaymentIntentSucceeded);
        assert_eq!((event.object_id.as_str(), event.object_type.as_str()), ("pi_1", "payment_intent"));
        assert_eq!((event.created, event.livemode), (1_700_000_000, false));
    }

    #[test]
    fn any_matching_v1_is_enough_and_other_schemes_are_ignored() {
        let genuine = signature_header(SECRET, 1_700_000_000, PAYLOAD);
        let v1 = genuine.split_once(",v1=").unwrap().1;
        let rolled = format!("t=1700000000,v0={v1},v1={},v1={v1}", "00".repeat(32));
        assert!(verifier().verify(PAYLOAD, &rolled, at(1_700_000_000)).is_ok());
        let downgrade = format!("t=1700000000,v0={v1}");
        assert_eq!(
            verifier().verify(PAYLOAD, &downgrade, at(1_700_000_000)),
            Err(WebhookError::MalformedHeader("no v1 signature"))
        );
    }

    #[test]
    fn forged_altered_or_foreign_signatures_are_bad_signatures() {
        let header = signature_header(SECRET, 1_700_000_000, PAYLOAD);
        let now = at(1_700_000_000);
        let forged = signature_header("whsec_someone_else", 1_700_000_000, PAYLOAD);
        assert_eq!(verifier().verify(PAYLOAD, &forged, now), Err(WebhookError::BadSignature));
        let altered = String::from_utf8(PAYLOAD.to_vec()).unwrap().replace("pi_1", "pi_2");
        assert_eq!(verifier().verify(altered.as_bytes(), &header, now), Err(WebhookError::BadSignature));
        // Moving the timestamp invalidates the signature, so a replay cannot be "refreshed".
        let moved = header.replace("t=1700000000", "t=1700000400");
        assert_eq!(verifier().verify(PAYLOAD, &moved, at(1_700_000_400)), Err(WebhookError::BadSignature));
        assert_eq!(verifier().verify(PAYLOAD, "t=1700000000,v1=zz", now), Err(WebhookError::BadSignature));
    }

    #[test]
    fn timestamps_more_than_five_minutes_away_are_stale_in_both_directions() {
        let header = signature_header(SECRET, 1_700_000_000, PAYLOAD);
        assert!(verifier().verify(PAYLOAD, &header, at(1_700_000_300)).is_ok());
        assert!(verifier().verify(PAYLOAD, &header, at(1_699_999_700)).is_ok());
        assert_eq!(
            verifier().verify(PAYLOAD, &header, at(1_700_000_360)),
            Err(WebhookError::StaleTimestamp { timestamp: 1_700_000_000, now: 1_700_000_360 })
        );
        assert!(matches!(
            verifier().verify(PAYLOAD, &header, at(1_699_999_000)),
            Err(WebhookError::StaleTimestamp { .. })
        ));
    }

    #[test]
    fn malformed_headers_and_payloads_are_told_apart() {
        let now = at(1_700_000_000);
        assert_eq!(verifier().verify(PAYLOAD, "", now), Err(WebhookError::MalformedHeader("no timestamp")));
        assert_eq!(
            verifier().verify(PAYLOAD, "t=yesterday,v1=00", now),
            Err(WebhookError::MalformedHeader("the timestamp is not a number"))
        );
        let junk = b"not json";
        let header = signature_header(SECRET, 1_700_000_000, junk);
        assert!(matches!(verifier().verify(junk, &header, now), Err(WebhookError::MalformedPayload(_))));
    }

    #[test]
    fn event_types_round_trip_through_their_stripe_names() {
        for (event_type, name) in EventType::NAMED {
            assert_eq!(EventType::parse(name), *event_type);
            assert_eq!(event_type.as_str(), *name);
        }
        assert_eq!(EventType::parse("invoice.paid"), EventType::Other("invoice.paid".into()));
        assert_eq!(EventType::Other("invoice.paid".into()).to_string(), "invoice.paid");
    }
}

/// Fuzz targets: what an Internet caller controls (the body, the `Stripe-Signature` header) and
/// what the clock says, arbitrary or nearly valid. Nothing may panic; 256 cases each, or
/// `PROPTEST_CASES`.
#[cfg(test)]
mod fuzz {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    const SECRET: &str = "whsec_fuzz_secret";

    fn verifier() -> WebhookVerifier {
        WebhookVerifier::new(SECRET.to_owned().into())
    }

    /// Any instant `DateTime<Utc>` can hold.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let (min, max) = (DateTime::<Utc>::MIN_UTC.timestamp(), DateTime::<Utc>::MAX_UTC.timestamp());
        prop_oneof![min..=max, 1_500_000_000i64..2_500_000_000].prop_map(|t| DateTime::from_timestamp(t, 0).unwrap())
    }

    fn timestamp() -> impl Strategy<Value = i64> {
        prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(0i64), 1_500_000_000i64..2_500_000_000]
    }

    /// Headers of every shape: random text, `t=…,v1=…` with random values, repeated or huge parts.
    fn header() -> impl Strategy<Value = String> {
        let value = prop_oneof!["[0-9a-f]{64}", "[0-9a-fA-F]{0,130}", ".{0,80}", Just(String::new())];
        let pair = prop_oneof![
            (timestamp(), Just(())).prop_map(|(t, ())| format!("t={t}")),
            "t=[^,]{0,30}",
            value.clone().prop_map(|v| format!("v1={v}")),
            value.prop_map(|v| format!("v0={v}")),
            "[ -~]{0,20}=?[ -~]{0,20}",
            "\\PC{0,20}",
        ];
        prop_oneof![
            ".{0,300}",
            prop::collection::vec(pair, 0..8).prop_map(|parts| parts.join(",")),
            // A huge header: many candidate signatures (each is decoded and compared).
            (timestamp(), 1usize..4000)
                .prop_map(|(t, n)| format!("t={t},{}", vec![format!("v1={}", "ab".repeat(32)); n].join(","))),
            (1usize..100_000).prop_map(|n| format!("t=1700000000,v1={}", "f".repeat(n))),
        ]
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2048),
            ".{0,512}".prop_map(String::into_bytes),
            event().prop_map(|(json, _)| json.into_bytes()),
        ]
    }

    /// A well-formed Stripe event and what the verifier should read from it.
    fn event() -> impl Strategy<Value = (String, WebhookEvent)> {
        let event_type = prop_oneof![
            prop::sample::select(EventType::NAMED.iter().map(|(_, name)| *name).collect::<Vec<_>>())
                .prop_map(str::to_owned),
            "[a-z_]{1,20}(\\.[a-z_]{1,20}){0,2}",
        ];
        (
            "evt_[A-Za-z0-9_]{1,40}",
            event_type,
            "[a-z]{2,3}_[A-Za-z0-9]{1,30}",
            "[a-z_.]{1,30}",
            any::<i64>(),
            any::<bool>(),
        )
            .prop_map(|(id, event_type, object_id, object_type, created, livemode)| {
                let json = serde_json::json!({
                    "id": id, "object": "event", "type": event_type, "created": created, "livemode": livemode,
                    "api_version": "2025-01-27.acacia",
                    "data": { "object": { "id": object_id, "object": object_type, "amount": 1200 } },
                });
                let event = WebhookEvent {
                    id: id.parse().unwrap(),
                    event_type: EventType::parse(&event_type),
                    object_id,
                    object_type,
                    created,
                    livemode,
                };
                (json.to_string(), event)
            })
    }

    /// A few bytes changed, inserted or removed.
    fn mutate(bytes: &mut Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) {
        for (at, op, byte) in edits {
            match op % 3 {
                0 if !bytes.is_empty() => {
                    let i = at.index(bytes.len());
                    bytes[i] ^= byte.max(&1);
                }
                1 => bytes.insert(at.index(bytes.len() + 1), *byte),
                _ if !bytes.is_empty() => drop(bytes.remove(at.index(bytes.len()))),
                _ => bytes.push(*byte),
            }
        }
    }

    #[test]
    fn a_genuine_signature_at_an_extreme_timestamp_is_stale_not_a_panic() {
        // Found by the target below: `(now - t).abs()` overflowed. The last one is `now - 2⁶³`,
        // which a wrapping subtraction would have judged fresh.
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, i64::MIN + 1_700_000_000] {
            let header = signature_header(SECRET, t, b"{}");
            let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
            assert!(matches!(verifier().verify(b"{}", &header, now), Err(WebhookError::StaleTimestamp { .. })), "{t}");
        }
    }

    proptest! {
        #[test]
        fn stripe_webhooks_never_panic_on_any_body_or_signature_header(
            body in body(), header in header(), now in instant(),
        ) {
            let verdict = verifier().verify(&body, &header, now);
            // Without the secret nothing gets past the signature check.
            prop_assert!(
                matches!(verdict, Err(WebhookError::MalformedHeader(_) | WebhookError::BadSignature)),
                "{verdict:?}"
            );
        }

        #[test]
        fn genuine_signatures_at_any_timestamp_are_accepted_only_within_the_tolerance(
            body in body(), t in timestamp(), now in instant(), near in -TOLERANCE_SECS..=TOLERANCE_SECS, close in any::<bool>(),
        ) {
            // Half the cases sign at a time near `now`, so acceptance is exercised too.
            let t = if close { now.timestamp() + near } else { t };
            let header = signature_header(SECRET, t, &body);
            let fresh = (i128::from(now.timestamp()) - i128::from(t)).abs() <= i128::from(TOLERANCE_SECS);
            match verifier().verify(&body, &header, now) {
                Err(WebhookError::StaleTimestamp { timestamp, .. }) => prop_assert!(!fresh && timestamp == t),
                Ok(_) | Err(WebhookError::MalformedPayload(_)) => prop_assert!(fresh),
                other => prop_assert!(false, "a genuine signature was judged {other:?}"),
            }
        }

        #[test]
        fn a_genuinely_signed_fresh_event_is_accepted_and_read_exactly(
            (json, expected) in event(), t in 1_500_000_000i64..2_500_000_000, delay in -TOLERANCE_SECS..=TOLERANCE_SECS,
        ) {
            let header = signature_header(SECRET, t, json.as_bytes());
            let now = DateTime::from_timestamp(t + delay, 0).unwrap();
            prop_assert_eq!(verifier().verify(json.as_bytes(), &header, now), Ok(expected));
        }

        #[test]
        fn a_genuine_signature_over_a_mutated_body_or_header_is_refused(
            (json, _) in event(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 1..4),
            t in 1_500_000_000i64..2_500_000_000,
        ) {
            let header = signature_header(SECRET, t, json.as_bytes());
            let now = DateTime::from_timestamp(t, 0).unwrap();
            let mut body = json.clone().into_bytes();
            mutate(&mut body, &edits);
            if body != json.as_bytes() {
                prop_assert_eq!(verifier().verify(&body, &header, now), Err(WebhookError::BadSignature));
            }
            let mut tampered = header.clone().into_bytes();
            mutate(&mut tampered, &edits);
            if let Ok(tampered) = String::from_utf8(tampered) {
                // An edit may leave an equivalent header (spaces, upper-case hex, `t=+…`): then the
                // header still says the signed timestamp and holds the genuine signature.
                if verifier().verify(json.as_bytes(), &tampered, now).is_ok() {
                    let genuine = header.split_once(",v1=").unwrap().1;
                    let parsed = parse_header(&tampered).unwrap();
                    prop_assert_eq!(parsed.timestamp, t);
                    prop_assert!(parsed.v1.iter().any(|v| v.eq_ignore_ascii_case(genuine)), "{}", tampered);
                }
            }
        }
    }
}
