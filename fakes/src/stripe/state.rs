//! The emulator's account: PaymentIntents, Charges, Refunds, Checkout Sessions and Events, the
//! manual-capture state machine, and the JSON Stripe renders them as.
//!
//! Objects are rendered complete (every field Stripe sends, `null` where unset), because
//! async-stripe deserialises strictly: a missing non-optional field fails the whole response.

use std::collections::{BTreeMap, HashMap};

use rand::{Rng, distr::Alphanumeric};
use serde_json::{Value, json};

/// A form-encoded request body, by raw key (`metadata[order_id]`, `line_items[0][quantity]`).
pub(super) type Form = BTreeMap<String, String>;

/// The Stripe API version the emulator speaks: the one the platform's pinned SDK is generated for
/// (payment's tests check the two agree).
pub(super) const API_VERSION: &str = "2026-09-30.endive";

/// An error answer: its status and Stripe's `{"error": {…}}` body.
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    pub(super) status: u16,
    pub(super) body: Value,
}

impl ApiError {
    fn new(status: u16, error: Value) -> Self {
        Self { status, body: json!({ "error": error }) }
    }

    pub(super) fn invalid(code: &str, message: impl Into<String>, param: Option<&str>) -> Self {
        let message = message.into();
        Self::new(400, json!({ "type": "invalid_request_error", "code": code, "message": message, "param": param }))
    }

    fn missing(what: &str, id: &str) -> Self {
        let message = format!("No such {what}: '{id}'");
        Self::new(404, json!({ "type": "invalid_request_error", "code": "resource_missing", "message": message }))
    }

    fn unexpected_state(pi: &Value, message: String) -> Self {
        Self::new(
            400,
            json!({ "type": "invalid_request_error", "code": "payment_intent_unexpected_state", "message": message, "payment_intent": pi }),
        )
    }

    pub(super) fn with_status(self, status: u16) -> Self {
        Self { status, ..self }
    }

    pub(super) fn idempotency(message: &str) -> Self {
        Self::new(400, json!({ "type": "idempotency_error", "message": message }))
    }

    pub(super) fn unauthorized() -> Self {
        Self::new(401, json!({ "type": "invalid_request_error", "message": "Invalid API Key provided" }))
    }

    /// Stripe keeps no idempotent result for requests that failed validation.
    pub(super) fn is_validation(&self) -> bool {
        self.status == 400
            && self.body["error"]["code"]
                .as_str()
                .is_some_and(|code| code.starts_with("parameter_") || code == "amount_too_small")
    }

    pub(super) fn message(&self) -> String {
        self.body["error"]["message"].as_str().unwrap_or("error").to_owned()
    }
}

pub(super) type Reply = Result<Value, ApiError>;

/// What a test PaymentMethod does when confirmed.
#[derive(Debug, Clone, Copy)]
enum Card {
    Succeeds,
    Declined { decline_code: &'static str, message: &'static str },
}

/// Stripe's test PaymentMethods the emulator knows (docs.stripe.com/testing).
pub(super) const TEST_CARDS: &[(&str, &str)] = &[
    ("pm_card_visa", "Visa 4242 — succeeds"),
    ("pm_card_mastercard", "Mastercard 4444 — succeeds"),
    ("pm_card_chargeDeclined", "Visa 0002 — declined"),
    ("pm_card_chargeDeclinedInsufficientFunds", "Visa 9995 — insufficient funds"),
];

fn card(payment_method: &str) -> Option<Card> {
    match payment_method {
        "pm_card_visa" | "pm_card_mastercard" => Some(Card::Succeeds),
        "pm_card_chargeDeclined" => {
            Some(Card::Declined { decline_code: "generic_decline", message: "Your card was declined." })
        }
        "pm_card_chargeDeclinedInsufficientFunds" => {
            Some(Card::Declined { decline_code: "insufficient_funds", message: "Your card has insufficient funds." })
        }
        _ => None,
    }
}

#[derive(Debug, Clone)]
struct PaymentFailure {
    decline_code: &'static str,
    message: &'static str,
    charge: String,
}

#[derive(Debug, Clone)]
struct PaymentIntent {
    id: String,
    amount: i64,
    currency: String,
    capture_method: String,
    status: &'static str,
    created: i64,
    metadata: BTreeMap<String, String>,
    description: Option<String>,
    payment_method: Option<String>,
    last_failure: Option<PaymentFailure>,
    latest_charge: Option<String>,
    amount_capturable: i64,
    amount_received: i64,
    canceled_at: Option<i64>,
    cancellation_reason: Option<String>,
    client_secret: String,
}

#[derive(Debug, Clone)]
struct Charge {
    id: String,
    payment_intent: String,
    payment_method: String,
    amount: i64,
    amount_captured: i64,
    amount_refunded: i64,
    currency: String,
    created: i64,
    metadata: BTreeMap<String, String>,
    failure: Option<(&'static str, &'static str)>,
    captured: bool,
}

#[derive(Debug, Clone)]
struct Refund {
    id: String,
    amount: i64,
    charge: String,
    payment_intent: String,
    currency: String,
    created: i64,
    metadata: BTreeMap<String, String>,
    reason: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) id: String,
    created: i64,
    expires_at: i64,
    pub(super) amount_total: i64,
    pub(super) currency: String,
    pub(super) product_name: String,
    metadata: BTreeMap<String, String>,
    client_reference_id: Option<String>,
    intent_capture_method: String,
    intent_metadata: BTreeMap<String, String>,
    success_url: String,
    cancel_url: Option<String>,
    pub(super) status: &'static str,
    payment_status: &'static str,
    payment_intent: Option<String>,
}

/// One recorded event, as created (Stripe never changes an event's data afterwards).
#[derive(Debug, Clone)]
pub(super) struct Event {
    pub(super) id: String,
    pub(super) event_type: String,
    pub(super) created: i64,
    pub(super) object: Value,
    request_id: String,
    idempotency_key: Option<String>,
    /// `None` until a delivery was attempted; then whether the last one got a 2xx.
    pub(super) delivered: Option<bool>,
}

impl Event {
    pub(super) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "event",
            "account": null,
            "api_version": API_VERSION,
            "context": null,
            "created": self.created,
            "data": { "object": self.object, "previous_attributes": null },
            "livemode": false,
            "pending_webhooks": i64::from(self.delivered != Some(true)),
            "request": { "id": self.request_id, "idempotency_key": self.idempotency_key },
            "type": self.event_type,
        })
    }
}

/// A response saved under an idempotency key, with the request it answered.
#[derive(Debug, Clone)]
pub(super) struct Saved {
    pub(super) request: (String, Form),
    pub(super) status: u16,
    pub(super) body: Value,
}

/// Everything the emulated account holds.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) base_url: String,
    payment_intents: HashMap<String, PaymentIntent>,
    charges: HashMap<String, Charge>,
    refunds: HashMap<String, Refund>,
    sessions: HashMap<String, Session>,
    pub(super) events: Vec<Event>,
    pub(super) idempotency: HashMap<String, Saved>,
    /// Events created by the request being handled, for delivery once it is answered.
    pub(super) new_events: Vec<String>,
    request_id: String,
    idempotency_key: Option<String>,
}

pub(super) fn new_id(prefix: &str) -> String {
    let suffix: String = rand::rng().sample_iter(&Alphanumeric).take(24).map(char::from).collect();
    format!("{prefix}_{suffix}")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn metadata(form: &Form, prefix: &str) -> BTreeMap<String, String> {
    let open = format!("{prefix}[");
    form.iter()
        .filter_map(|(key, value)| {
            key.strip_prefix(&open).and_then(|rest| rest.strip_suffix(']')).map(|k| (k.to_owned(), value.clone()))
        })
        .collect()
}

fn integer(form: &Form, key: &str) -> Result<Option<i64>, ApiError> {
    form.get(key)
        .map(|raw| {
            raw.parse::<i64>().map_err(|_| {
                ApiError::invalid("parameter_invalid_integer", format!("Invalid integer: {raw}"), Some(key))
            })
        })
        .transpose()
}

fn required<'f>(form: &'f Form, key: &str) -> Result<&'f str, ApiError> {
    form.get(key)
        .map(String::as_str)
        .ok_or_else(|| ApiError::invalid("parameter_missing", format!("Missing required param: {key}."), Some(key)))
}

fn currency(form: &Form, key: &str) -> Result<String, ApiError> {
    match required(form, key)? {
        code if code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase()) => Ok(code.to_owned()),
        code => Err(ApiError::invalid("parameter_invalid_string", format!("Invalid currency: {code}"), Some(key))),
    }
}

impl State {
    /// An empty account whose hosted pages live under `base_url`.
    pub(super) fn new(base_url: String) -> Self {
        Self { base_url, ..Self::default() }
    }

    /// Starts handling one API request (its id and key appear in the events it causes).
    pub(super) fn begin(&mut self, idempotency_key: Option<String>) {
        self.request_id = new_id("req");
        self.idempotency_key = idempotency_key;
    }

    pub(super) fn request_id(&self) -> &str {
        &self.request_id
    }

    fn emit(&mut self, event_type: &str, object: Value) {
        let event = Event {
            id: new_id("evt"),
            event_type: event_type.to_owned(),
            created: now(),
            object,
            request_id: self.request_id.clone(),
            idempotency_key: self.idempotency_key.clone(),
            delivered: None,
        };
        self.new_events.push(event.id.clone());
        self.events.push(event);
    }

    fn pi(&self, id: &str) -> Result<&PaymentIntent, ApiError> {
        self.payment_intents.get(id).ok_or_else(|| ApiError::missing("payment_intent", id))
    }

    fn pi_mut(&mut self, id: &str) -> Result<&mut PaymentIntent, ApiError> {
        self.payment_intents.get_mut(id).ok_or_else(|| ApiError::missing("payment_intent", id))
    }

    pub(super) fn payment_intent_json(&self, id: &str) -> Reply {
        self.pi(id).map(|pi| self.render_pi(pi))
    }

    pub(super) fn create_payment_intent(&mut self, form: &Form) -> Reply {
        let Some(amount) = integer(form, "amount")? else {
            return Err(ApiError::invalid("parameter_missing", "Missing required param: amount.", Some("amount")));
        };
        if let Some(payment_method) = form.get("payment_method").filter(|pm| card(pm).is_none()) {
            return Err(ApiError::missing("PaymentMethod", payment_method));
        }
        if amount < 1 {
            return Err(ApiError::invalid("amount_too_small", "Amount must be at least 1 minor unit", Some("amount")));
        }
        let pi = self.new_payment_intent(
            amount,
            currency(form, "currency")?,
            capture_method(form.get("capture_method").map(String::as_str))?,
            metadata(form, "metadata"),
            form.get("description").cloned(),
        );
        let id = pi.id.clone();
        if let Some(payment_method) = form.get("payment_method") {
            self.attach(&id, payment_method)?;
        }
        match form.get("confirm").map(String::as_str) {
            Some("true") => self.confirm(&id, None),
            _ => self.payment_intent_json(&id),
        }
    }

    fn new_payment_intent(
        &mut self,
        amount: i64,
        currency: String,
        capture_method: String,
        metadata: BTreeMap<String, String>,
        description: Option<String>,
    ) -> PaymentIntent {
        let id = new_id("pi");
        let pi = PaymentIntent {
            client_secret: format!("{id}_secret_{}", new_id("s").trim_start_matches("s_")),
            id: id.clone(),
            amount,
            currency,
            capture_method,
            status: "requires_payment_method",
            created: now(),
            metadata,
            description,
            payment_method: None,
            last_failure: None,
            latest_charge: None,
            amount_capturable: 0,
            amount_received: 0,
            canceled_at: None,
            cancellation_reason: None,
        };
        self.payment_intents.insert(id.clone(), pi.clone());
        let json = self.render_pi(&pi);
        self.emit("payment_intent.created", json);
        pi
    }

    fn attach(&mut self, id: &str, payment_method: &str) -> Result<(), ApiError> {
        if card(payment_method).is_none() {
            return Err(ApiError::missing("PaymentMethod", payment_method));
        }
        let pi = self.pi_mut(id)?;
        pi.payment_method = Some(payment_method.to_owned());
        if pi.status == "requires_payment_method" {
            pi.status = "requires_confirmation";
        }
        Ok(())
    }

    /// Confirms with the attached (or given) test card: authorised (manual capture), charged
    /// (automatic), or declined back to `requires_payment_method` with a 402 card error.
    pub(super) fn confirm(&mut self, id: &str, form: Option<&Form>) -> Reply {
        if let Some(payment_method) = form.and_then(|f| f.get("payment_method")) {
            self.attach(id, payment_method)?;
        }
        let pi = self.pi(id)?.clone();
        if !matches!(pi.status, "requires_payment_method" | "requires_confirmation") {
            let message = format!(
                "This PaymentIntent's status is {}, but it must be requires_payment_method or requires_confirmation to be confirmed.",
                pi.status
            );
            return Err(ApiError::unexpected_state(&self.render_pi(&pi), message));
        }
        let Some(payment_method) = pi.payment_method.clone() else {
            let message = "You cannot confirm this PaymentIntent because it's missing a payment method.".to_owned();
            return Err(ApiError::unexpected_state(&self.render_pi(&pi), message));
        };
        let outcome = card(&payment_method).unwrap_or(Card::Succeeds);
        let charge = Charge {
            id: new_id("ch"),
            payment_intent: pi.id.clone(),
            payment_method: payment_method.clone(),
            amount: pi.amount,
            amount_captured: 0,
            amount_refunded: 0,
            currency: pi.currency.clone(),
            created: now(),
            metadata: pi.metadata.clone(),
            failure: None,
            captured: false,
        };
        match outcome {
            Card::Succeeds => {
                let automatic = pi.capture_method != "manual";
                let charge =
                    Charge { amount_captured: if automatic { pi.amount } else { 0 }, captured: automatic, ..charge };
                let charge_json = render_charge(&charge);
                let charge_id = charge.id.clone();
                self.charges.insert(charge_id.clone(), charge);
                let pi = self.pi_mut(id)?;
                pi.latest_charge = Some(charge_id);
                pi.last_failure = None;
                if automatic {
                    pi.status = "succeeded";
                    pi.amount_received = pi.amount;
                } else {
                    pi.status = "requires_capture";
                    pi.amount_capturable = pi.amount;
                }
                let pi = self.render_pi(self.pi(id)?);
                self.emit("charge.succeeded", charge_json);
                match automatic {
                    true => self.emit("payment_intent.succeeded", pi.clone()),
                    false => self.emit("payment_intent.amount_capturable_updated", pi.clone()),
                }
                Ok(pi)
            }
            Card::Declined { decline_code, message } => {
                let charge = Charge { failure: Some(("card_declined", message)), ..charge };
                let charge_json = render_charge(&charge);
                let charge_id = charge.id.clone();
                self.charges.insert(charge_id.clone(), charge);
                let failure = PaymentFailure { decline_code, message, charge: charge_id.clone() };
                let pi = self.pi_mut(id)?;
                pi.latest_charge = Some(charge_id);
                pi.status = "requires_payment_method";
                pi.payment_method = None;
                pi.last_failure = Some(failure.clone());
                let pi = self.render_pi(self.pi(id)?);
                self.emit("charge.failed", charge_json);
                self.emit("payment_intent.payment_failed", pi.clone());
                let mut error = render_failure(&failure);
                error["payment_intent"] = pi;
                Err(ApiError::new(402, error))
            }
        }
    }

    pub(super) fn capture(&mut self, id: &str, form: &Form) -> Reply {
        let pi = self.pi(id)?.clone();
        if pi.status != "requires_capture" {
            let message = format!(
                "This PaymentIntent could not be captured because it has a status of {}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                pi.status
            );
            return Err(ApiError::unexpected_state(&self.render_pi(&pi), message));
        }
        let amount = integer(form, "amount_to_capture")?.unwrap_or(pi.amount_capturable);
        if amount < 1 || amount > pi.amount_capturable {
            let message = format!("amount_to_capture must be between 1 and {}", pi.amount_capturable);
            return Err(ApiError::invalid("parameter_invalid_integer", message, Some("amount_to_capture")));
        }
        let charge_id = pi.latest_charge.clone().unwrap_or_default();
        let charge_json = self.charges.get_mut(&charge_id).map(|charge| {
            charge.captured = true;
            charge.amount_captured = amount;
            render_charge(charge)
        });
        let pi = self.pi_mut(id)?;
        pi.status = "succeeded";
        pi.amount_received = amount;
        pi.amount_capturable = 0;
        let pi = self.render_pi(self.pi(id)?);
        if let Some(charge) = charge_json {
            self.emit("charge.captured", charge);
        }
        self.emit("payment_intent.succeeded", pi.clone());
        Ok(pi)
    }

    pub(super) fn cancel(&mut self, id: &str, form: &Form) -> Reply {
        let pi = self.pi(id)?.clone();
        if !matches!(
            pi.status,
            "requires_payment_method" | "requires_confirmation" | "requires_action" | "requires_capture"
        ) {
            let message = format!(
                "You cannot cancel this PaymentIntent because it has a status of {}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.",
                pi.status
            );
            return Err(ApiError::unexpected_state(&self.render_pi(&pi), message));
        }
        if pi.status == "requires_capture" {
            // Releasing an authorisation shows as a full refund of the uncaptured charge.
            if let Some(charge) = pi.latest_charge.as_ref().and_then(|c| self.charges.get_mut(c)) {
                charge.amount_refunded = charge.amount;
            }
        }
        let pi = self.pi_mut(id)?;
        pi.status = "canceled";
        pi.amount_capturable = 0;
        pi.canceled_at = Some(now());
        pi.cancellation_reason = form.get("cancellation_reason").cloned();
        let pi = self.render_pi(self.pi(id)?);
        self.emit("payment_intent.canceled", pi.clone());
        Ok(pi)
    }

    pub(super) fn create_refund(&mut self, form: &Form) -> Reply {
        let charge_id = match (form.get("payment_intent"), form.get("charge")) {
            (Some(pi), _) => {
                let pi = self.pi(pi)?;
                if pi.status != "succeeded" {
                    let message =
                        format!("This PaymentIntent ({}) does not have a successful charge to refund.", pi.id);
                    return Err(ApiError::invalid("charge_not_refundable", message, Some("payment_intent")));
                }
                pi.latest_charge.clone().unwrap_or_default()
            }
            (None, Some(charge)) => charge.clone(),
            (None, None) => {
                return Err(ApiError::invalid(
                    "parameter_missing",
                    "One of `charge` or `payment_intent` is required.",
                    None,
                ));
            }
        };
        let charge = self.charges.get(&charge_id).ok_or_else(|| ApiError::missing("charge", &charge_id))?.clone();
        let refundable = charge.amount_captured - charge.amount_refunded;
        if refundable <= 0 {
            let message = format!("Charge {} has already been refunded.", charge.id);
            return Err(ApiError::invalid("charge_already_refunded", message, None));
        }
        let amount = integer(form, "amount")?.unwrap_or(refundable);
        if amount < 1 || amount > refundable {
            let message =
                format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})");
            return Err(ApiError::invalid("amount_too_large", message, Some("amount")));
        }
        let refund = Refund {
            id: new_id("re"),
            amount,
            charge: charge.id.clone(),
            payment_intent: charge.payment_intent.clone(),
            currency: charge.currency.clone(),
            created: now(),
            metadata: metadata(form, "metadata"),
            reason: form.get("reason").cloned(),
        };
        let json = render_refund(&refund);
        self.refunds.insert(refund.id.clone(), refund);
        let charge_json = self.charges.get_mut(&charge_id).map(|charge| {
            charge.amount_refunded += amount;
            render_charge(charge)
        });
        self.emit("refund.created", json.clone());
        if let Some(charge) = charge_json {
            self.emit("charge.refunded", charge);
        }
        Ok(json)
    }

    pub(super) fn refund_json(&self, id: &str) -> Reply {
        self.refunds.get(id).map(render_refund).ok_or_else(|| ApiError::missing("refund", id))
    }

    pub(super) fn create_session(&mut self, form: &Form) -> Reply {
        match required(form, "mode")? {
            "payment" => {}
            other => {
                let message = format!("The emulator supports mode=payment only, not `{other}`");
                return Err(ApiError::invalid("parameter_invalid_string", message, Some("mode")));
            }
        }
        let success_url = required(form, "success_url")?.to_owned();
        let (mut amount_total, mut currency_seen, mut product_name) = (0_i64, None::<String>, None::<String>);
        for line in 0.. {
            let key = |rest: &str| format!("line_items[{line}]{rest}");
            if !form.keys().any(|k| k.starts_with(&key("["))) {
                break;
            }
            if form.contains_key(&key("[price]")) {
                let message = "The emulator supports line_items[].price_data only, not Price objects";
                return Err(ApiError::invalid("parameter_invalid_string", message, Some("line_items")));
            }
            let unit_amount = integer(form, &key("[price_data][unit_amount]"))?.ok_or_else(|| {
                ApiError::invalid(
                    "parameter_missing",
                    "Missing unit_amount",
                    Some("line_items[price_data][unit_amount]"),
                )
            })?;
            let quantity = integer(form, &key("[quantity]"))?.unwrap_or(1);
            let line_currency = currency(form, &key("[price_data][currency]"))?;
            if currency_seen.as_ref().is_some_and(|c| *c != line_currency) {
                return Err(ApiError::invalid("parameter_invalid_string", "Line items must share one currency", None));
            }
            currency_seen = Some(line_currency);
            product_name.get_or_insert_with(|| {
                form.get(&key("[price_data][product_data][name]")).cloned().unwrap_or_else(|| "Item".to_owned())
            });
            amount_total += unit_amount * quantity;
        }
        let currency = currency_seen.ok_or_else(|| {
            ApiError::invalid("parameter_missing", "Missing required param: line_items.", Some("line_items"))
        })?;
        let created = now();
        let expires_at = integer(form, "expires_at")?.unwrap_or(created + 24 * 3600);
        if !(created + 30 * 60 - 60..=created + 24 * 3600 + 60).contains(&expires_at) {
            let message = "expires_at must be between 30 minutes and 24 hours from now";
            return Err(ApiError::invalid("parameter_invalid_integer", message, Some("expires_at")));
        }
        let session = Session {
            id: new_id("cs_test"),
            created,
            expires_at,
            amount_total,
            currency,
            product_name: product_name.unwrap_or_default(),
            metadata: metadata(form, "metadata"),
            client_reference_id: form.get("client_reference_id").cloned(),
            intent_capture_method: capture_method(form.get("payment_intent_data[capture_method]").map(String::as_str))?,
            intent_metadata: metadata(form, "payment_intent_data[metadata]"),
            success_url,
            cancel_url: form.get("cancel_url").cloned(),
            status: "open",
            payment_status: "unpaid",
            payment_intent: None,
        };
        let json = self.render_session(&session);
        self.sessions.insert(session.id.clone(), session);
        Ok(json)
    }

    pub(super) fn session(&self, id: &str) -> Result<&Session, ApiError> {
        self.sessions.get(id).ok_or_else(|| ApiError::missing("checkout.session", id))
    }

    pub(super) fn session_json(&self, id: &str) -> Reply {
        self.session(id).map(|session| self.render_session(session))
    }

    /// The buyer submits the hosted page with a test card: the session's PaymentIntent is created
    /// (once) and confirmed. On success the session completes and the redirect target is returned.
    pub(super) fn pay_session(&mut self, id: &str, payment_method: &str) -> Result<String, ApiError> {
        let session = self.session(id)?.clone();
        if session.status == "open" && now() > session.expires_at {
            let session = self.sessions.get_mut(id).ok_or_else(|| ApiError::missing("checkout.session", id))?;
            session.status = "expired";
            let json = self.render_session(self.session(id)?);
            self.emit("checkout.session.expired", json);
        }
        let session = self.session(id)?.clone();
        if session.status != "open" {
            let message = format!("This Checkout Session is {} and can no longer be paid.", session.status);
            return Err(ApiError::invalid("checkout_session_unexpected_state", message, None));
        }
        let pi_id = match session.payment_intent {
            Some(pi) => pi,
            None => {
                let pi = self.new_payment_intent(
                    session.amount_total,
                    session.currency.clone(),
                    session.intent_capture_method.clone(),
                    session.intent_metadata.clone(),
                    Some(session.product_name.clone()),
                );
                if let Some(session) = self.sessions.get_mut(id) {
                    session.payment_intent = Some(pi.id.clone());
                }
                pi.id
            }
        };
        let form = Form::from([("payment_method".to_owned(), payment_method.to_owned())]);
        let pi = self.confirm(&pi_id, Some(&form))?;
        let session = self.sessions.get_mut(id).ok_or_else(|| ApiError::missing("checkout.session", id))?;
        session.status = "complete";
        // An authorisation is not money in the account yet: Checkout reports it as `unpaid`.
        session.payment_status = if pi["status"] == "succeeded" { "paid" } else { "unpaid" };
        let redirect = session.success_url.replace("{CHECKOUT_SESSION_ID}", &session.id);
        let json = self.render_session(self.session(id)?);
        self.emit("checkout.session.completed", json);
        Ok(redirect)
    }

    /// `POST /v1/checkout/sessions/{id}/expire`: an open session can no longer be paid.
    pub(super) fn expire_session(&mut self, id: &str) -> Reply {
        let session = self.sessions.get_mut(id).ok_or_else(|| ApiError::missing("checkout.session", id))?;
        if session.status != "open" {
            let message = format!(
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                session.status
            );
            return Err(ApiError::invalid("checkout_session_unexpected_state", message, None));
        }
        session.status = "expired";
        let json = self.render_session(self.session(id)?);
        self.emit("checkout.session.expired", json.clone());
        Ok(json)
    }

    /// `GET /v1/payment_intents/search`: Stripe's search query language, the subset of exact
    /// matches joined by `AND`: `status:'requires_capture'`, `metadata['order_id']:'…'`.
    pub(super) fn search_payment_intents(&self, query: &[(String, String)]) -> Reply {
        let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let invalid = |message: String| ApiError::invalid("parameter_invalid_string", message, Some("query"));
        let raw = get("query")
            .ok_or_else(|| ApiError::invalid("parameter_missing", "Missing required param: query.", Some("query")))?;
        let mut clauses = Vec::new();
        for clause in raw.split(" AND ") {
            let (field, value) =
                clause.trim().split_once(':').ok_or_else(|| invalid(format!("Invalid query: {raw}")))?;
            let value = value.trim_matches(|c| c == '\'' || c == '"').to_owned();
            let field = match field {
                "status" => None,
                other => Some(
                    other
                        .strip_prefix("metadata[")
                        .and_then(|rest| rest.strip_suffix(']'))
                        .map(|key| key.trim_matches(|c| c == '\'' || c == '"').to_owned())
                        .ok_or_else(|| invalid(format!("The emulator cannot search on `{other}`")))?,
                ),
            };
            clauses.push((field, value));
        }
        let limit = get("limit")
            .map_or(Ok(10), str::parse::<usize>)
            .map_err(|_| ApiError::invalid("parameter_invalid_integer", "limit must be an integer", Some("limit")))?;
        let offset = get("page").map_or(Ok(0), str::parse::<usize>).map_err(|_| invalid("Invalid page".into()))?;
        let mut matching: Vec<&PaymentIntent> = self
            .payment_intents
            .values()
            .filter(|pi| {
                clauses.iter().all(|(field, value)| match field {
                    None => pi.status == value,
                    Some(key) => pi.metadata.get(key) == Some(value),
                })
            })
            .collect();
        matching.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
        let limit = limit.clamp(1, 100);
        let page: Vec<Value> = matching.iter().skip(offset).take(limit).map(|pi| self.render_pi(pi)).collect();
        let has_more = matching.len() > offset + limit;
        Ok(json!({
            "object": "search_result", "url": "/v1/payment_intents/search", "data": page, "has_more": has_more,
            "next_page": has_more.then(|| (offset + limit).to_string()), "total_count": matching.len(),
        }))
    }

    /// Whether `client_secret` is the PaymentIntent's own (what a publishable key must show).
    pub(super) fn client_secret_matches(&self, id: &str, client_secret: Option<&str>) -> bool {
        self.pi(id).is_ok_and(|pi| client_secret == Some(pi.client_secret.as_str()))
    }

    /// `GET /v1/events`: newest first; `type`, `types[]`, `delivery_success`, `starting_after`, `limit`.
    pub(super) fn list_events(&self, query: &[(String, String)]) -> Reply {
        let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let types: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "type" || k == "types[]" || (k.starts_with("types[") && k.ends_with(']')))
            .map(|(_, v)| v.as_str())
            .collect();
        let limit = get("limit")
            .map_or(Ok(10), str::parse::<usize>)
            .map_err(|_| ApiError::invalid("parameter_invalid_integer", "limit must be an integer", Some("limit")))?;
        let limit = limit.clamp(1, 100);
        let delivery_success = get("delivery_success").map(|v| v == "true");
        let mut newest_first = self.events.iter().rev().peekable();
        if let Some(after) = get("starting_after") {
            newest_first.by_ref().find(|e| e.id == after);
        }
        let matching: Vec<&Event> = newest_first
            .filter(|e| types.is_empty() || types.contains(&e.event_type.as_str()))
            .filter(|e| delivery_success.is_none_or(|ok| (e.delivered == Some(true)) == ok))
            .collect();
        let page: Vec<Value> = matching.iter().take(limit).map(|e| e.to_json()).collect();
        Ok(json!({ "object": "list", "data": page, "has_more": matching.len() > limit, "url": "/v1/events" }))
    }

    pub(super) fn event(&self, id: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.id == id)
    }

    pub(super) fn event_mut(&mut self, id: &str) -> Option<&mut Event> {
        self.events.iter_mut().find(|e| e.id == id)
    }

    fn render_pi(&self, pi: &PaymentIntent) -> Value {
        json!({
            "id": pi.id,
            "object": "payment_intent",
            "amount": pi.amount,
            "amount_capturable": pi.amount_capturable,
            "amount_details": null,
            "amount_received": pi.amount_received,
            "application": null,
            "application_fee_amount": null,
            "automatic_payment_methods": { "allow_redirects": "never", "enabled": true },
            "canceled_at": pi.canceled_at,
            "cancellation_reason": pi.cancellation_reason,
            "capture_method": pi.capture_method,
            "client_secret": pi.client_secret,
            "confirmation_method": "automatic",
            "created": pi.created,
            "currency": pi.currency,
            "customer": null,
            "description": pi.description,
            "excluded_payment_method_types": null,
            "last_payment_error": pi.last_failure.as_ref().map(render_failure),
            "latest_charge": pi.latest_charge,
            "livemode": false,
            "metadata": pi.metadata,
            "next_action": null,
            "on_behalf_of": null,
            "payment_method": pi.payment_method,
            "payment_method_configuration_details": null,
            "payment_method_options": null,
            "payment_method_types": ["card"],
            "processing": null,
            "receipt_email": null,
            "review": null,
            "setup_future_usage": null,
            "shipping": null,
            "source": null,
            "statement_descriptor": null,
            "statement_descriptor_suffix": null,
            "status": pi.status,
            "transfer_data": null,
            "transfer_group": null,
        })
    }

    fn render_session(&self, session: &Session) -> Value {
        let head = json!({
            "id": session.id,
            "object": "checkout.session",
            "adaptive_pricing": null,
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": session.amount_total,
            "amount_total": session.amount_total,
            "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
            "billing_address_collection": null,
            "cancel_url": session.cancel_url,
            "client_reference_id": session.client_reference_id,
            "client_secret": null,
            "consent": null,
            "consent_collection": null,
            "created": session.created,
            "currency": session.currency,
            "currency_conversion": null,
            "custom_fields": [],
            "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
            "customer": null,
            "customer_creation": "if_required",
            "customer_details": null,
            "customer_email": null,
            "expires_at": session.expires_at,
            "invoice": null,
        });
        let tail = json!({
            "invoice_creation": null,
            "livemode": false,
            "locale": null,
            "metadata": session.metadata,
            "mode": "payment",
            "payment_intent": session.payment_intent,
            "payment_link": null,
            "payment_method_collection": "if_required",
            "payment_method_configuration_details": null,
            "payment_method_options": null,
            "payment_method_types": ["card"],
            "payment_status": session.payment_status,
            "phone_number_collection": null,
            "recovered_from": null,
            "setup_intent": null,
            "shipping_address_collection": null,
            "shipping_cost": null,
            "shipping_options": [],
            "status": session.status,
            "submit_type": null,
            "subscription": null,
            "success_url": session.success_url,
            "total_details": null,
            "url": (session.status == "open").then(|| format!("{}pay/{}", self.base_url, session.id)),
        });
        merge(head, tail)
    }
}

/// `json!` has a recursion limit: Stripe's larger objects are written in two halves.
fn merge(mut head: Value, tail: Value) -> Value {
    if let (Some(head), Value::Object(tail)) = (head.as_object_mut(), tail) {
        head.extend(tail);
    }
    head
}

fn capture_method(raw: Option<&str>) -> Result<String, ApiError> {
    match raw.unwrap_or("automatic_async") {
        method @ ("automatic" | "automatic_async" | "manual") => Ok(method.to_owned()),
        other => Err(ApiError::invalid(
            "parameter_invalid_string",
            format!("Invalid capture_method: {other}"),
            Some("capture_method"),
        )),
    }
}

fn render_failure(failure: &PaymentFailure) -> Value {
    json!({
        "type": "card_error",
        "code": "card_declined",
        "decline_code": failure.decline_code,
        "message": failure.message,
        "charge": failure.charge,
        "doc_url": "https://docs.stripe.com/error-codes/card-declined",
        "payment_method": null,
        "payment_method_type": "card",
        "param": null,
        "advice_code": null,
        "network_advice_code": null,
        "network_decline_code": null,
        "request_log_url": null,
    })
}

fn render_charge(charge: &Charge) -> Value {
    let (failure_code, failure_message) =
        charge.failure.map_or((None, None), |(code, message)| (Some(code), Some(message)));
    let failed = charge.failure.is_some();
    json!({
        "id": charge.id,
        "object": "charge",
        "amount": charge.amount,
        "amount_captured": charge.amount_captured,
        "amount_refunded": charge.amount_refunded,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": null,
        "billing_details": { "address": null, "email": null, "name": null, "phone": null, "tax_id": null },
        "calculated_statement_descriptor": null,
        "captured": charge.captured,
        "created": charge.created,
        "currency": charge.currency,
        "customer": null,
        "description": null,
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "fraud_details": null,
        "livemode": false,
        "metadata": charge.metadata,
        "on_behalf_of": null,
        "outcome": {
            "type": if failed { "issuer_declined" } else { "authorized" },
            "network_status": if failed { "declined_by_network" } else { "approved_by_network" },
            "reason": failure_code.map(|_| "generic_decline"),
            "risk_level": "normal",
            "seller_message": if failed { "The bank did not return any further details with this decline." } else { "Payment complete." },
        },
        "paid": !failed,
        "payment_intent": charge.payment_intent,
        "payment_method": charge.payment_method,
        "payment_method_details": null,
        "receipt_email": null,
        "receipt_number": null,
        "receipt_url": null,
        "refunded": charge.amount_captured > 0 && charge.amount_refunded >= charge.amount_captured,
        "review": null,
        "shipping": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": if failed { "failed" } else { "succeeded" },
        "transfer_data": null,
        "transfer_group": null,
    })
}

fn render_refund(refund: &Refund) -> Value {
    json!({
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "balance_transaction": null,
        "charge": refund.charge,
        "created": refund.created,
        "currency": refund.currency,
        "description": null,
        "destination_details": null,
        "failure_balance_transaction": null,
        "failure_reason": null,
        "metadata": refund.metadata,
        "next_action": null,
        "payment_intent": refund.payment_intent,
        "reason": refund.reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null,
    })
}
