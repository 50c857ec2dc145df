//! Bad input, everywhere: every route of every service, read from its OpenAPI document, gets
//! bad values in every field it declares (each JSON body field, at any depth; each query, path
//! and header parameter; the raw body of uploads and webhooks), one field at a time on an
//! otherwise valid request, as a caller allowed to reach the route's validation.
//!
//! What it proves: no such request is answered with a 5xx; every 4xx is a problem document
//! (`application/problem+json`); and every 400/422 caused by a bad JSON body field or query
//! parameter names that field in `errors[].field`, so a client can tell what to fix.

use std::{
    collections::{BTreeMap, HashSet},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use alloy::primitives::Address;
use futures_util::{StreamExt, stream};
use reqwest::{Method, StatusCode, header::HeaderValue};
use serde_json::{Value, json};
use shared::auth::{Permission, PlatformRole};
use testkit::{self as testing, TestApp, TestDb};

use crate::access::{self, Who};

/// Stands for the mutated value in a serialized baseline, so raw JSON tokens (`1e400`) that no
/// `serde_json::Value` can hold are spliced into the text.
const PLACEHOLDER: &str = "__fuzz_placeholder__";
/// Requests in flight at once.
const CONCURRENCY: usize = 16;
/// A PNG signature and header: what KYC uploads check (artwork, which decodes it, refuses it).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0 fuzz";
/// A webhook target the local configuration accepts (no DNS in the test sandbox).
const HOOK_URL: &str = "http://127.0.0.1:9/hook";

/// What a JSON leaf holds, by its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Text,
    Timestamp,
    Enum,
    Number,
    Boolean,
}

/// One step into a JSON document.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    /// The first element of an array.
    First,
}

/// A bad value: its name in the report and its raw JSON text (or query/path text).
type Mutation = (&'static str, String);

fn long_text() -> String {
    "x".repeat(10_000)
}

fn mutations(leaf: Leaf) -> Vec<Mutation> {
    let text = || {
        vec![
            ("NUL", json!("a\u{0}b").to_string()),
            ("BEL", json!("a\u{7}b").to_string()),
            ("CRLF", json!("line\r\nbreak").to_string()),
            ("10k chars", json!(long_text()).to_string()),
            ("number 12", "12".to_owned()),
        ]
    };
    match leaf {
        Leaf::Text => text(),
        Leaf::Timestamp => {
            let mut all = text();
            all.extend([
                ("year -262143", json!("-262143-01-01T00:00:00Z").to_string()),
                ("year +262142", json!("+262142-12-31T23:59:59Z").to_string()),
                ("not a date", json!("not a date").to_string()),
            ]);
            all
        }
        Leaf::Enum => vec![("not-a-member", json!("not-a-member").to_string()), ("number 7", "7".to_owned())],
        Leaf::Number => vec![
            ("1e400", "1e400".to_owned()),
            ("-1", "-1".to_owned()),
            ("i64::MAX", "9223372036854775807".to_owned()),
            ("i64::MIN", "-9223372036854775808".to_owned()),
            ("string \"12\"", json!("12").to_string()),
        ],
        Leaf::Boolean => vec![("string \"false\"", json!("false").to_string()), ("number 0", "0".to_owned())],
    }
}

fn query_mutations(timestamp: bool) -> Vec<Mutation> {
    let mut all = vec![
        ("NUL", "\u{0}".to_owned()),
        ("10k chars", long_text()),
        ("1e400", "1e400".to_owned()),
        ("-1", "-1".to_owned()),
        ("i64::MAX", "9223372036854775807".to_owned()),
    ];
    if timestamp {
        all.push(("year -262143", "-262143-01-01T00:00:00Z".to_owned()));
        all.push(("year +262142", "+262142-12-31T23:59:59Z".to_owned()));
    }
    all
}

/// Path segments as sent (already percent-encoded).
fn path_mutations() -> Vec<Mutation> {
    vec![
        ("%00", "%00".to_owned()),
        ("10k chars", long_text()),
        ("1e400", "1e400".to_owned()),
        ("-1", "-1".to_owned()),
        ("i64::MAX+1", "9223372036854775808".to_owned()),
    ]
}

fn header_mutations() -> Vec<(&'static str, HeaderValue)> {
    vec![
        ("10k chars", HeaderValue::from_str(&long_text()).unwrap()),
        ("non-UTF-8 bytes", HeaderValue::from_bytes(b"a\xff\xfeb").unwrap()),
    ]
}

/// The OpenAPI document as JSON, with `$ref`s resolved on demand.
struct Doc(Value);

impl Doc {
    /// The schema `schema` stands for, and the component name it came from.
    fn resolve<'a>(&'a self, mut schema: &'a Value) -> (&'a Value, Option<&'a str>) {
        let mut name = None;
        for _ in 0..16 {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let component = reference.rsplit('/').next().unwrap_or_default();
                name = Some(component);
                schema = &self.0["components"]["schemas"][component];
            } else if let Some(first) = ["allOf", "oneOf", "anyOf"]
                .iter()
                .find_map(|k| schema.get(*k).and_then(Value::as_array))
                .and_then(|options| options.iter().find(|o| o.get("type") != Some(&json!("null"))))
            {
                schema = first;
            } else {
                break;
            }
        }
        (schema, name)
    }

    /// The schema's type, ignoring `null` in a list of types.
    fn kind<'a>(&self, schema: &'a Value) -> &'a str {
        match &schema["type"] {
            Value::String(kind) => kind,
            Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).find(|k| *k != "null").unwrap_or("null"),
            _ if schema.get("properties").is_some() => "object",
            _ => "",
        }
    }

    fn leaf(&self, schema: &Value) -> Option<Leaf> {
        if schema.get("enum").is_some() {
            return Some(Leaf::Enum);
        }
        match self.kind(schema) {
            "string" if matches!(schema["format"].as_str(), Some("date-time" | "date")) => Some(Leaf::Timestamp),
            "string" => Some(Leaf::Text),
            "integer" | "number" => Some(Leaf::Number),
            "boolean" => Some(Leaf::Boolean),
            _ => None,
        }
    }

    /// A valid-looking value for `schema`: required properties only (plus what [`Fixtures`]
    /// adds for the component), plausible values by field name.
    fn baseline(&self, schema: &Value, name: &str, fixtures: &Fixtures, depth: usize) -> Value {
        let (schema, component) = self.resolve(schema);
        if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
            return first.clone();
        }
        match self.kind(schema) {
            "object" => {
                let mut object = serde_json::Map::new();
                if depth < 6 {
                    for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                        let property = &schema["properties"][required];
                        object.insert(required.to_owned(), self.baseline(property, required, fixtures, depth + 1));
                    }
                }
                if let Some(Value::Object(extra)) = component.map(|c| fixtures.component(c)) {
                    object.extend(extra);
                }
                Value::Object(object)
            }
            "array" if depth < 6 => json!([self.baseline(&schema["items"], name, fixtures, depth + 1)]),
            "array" => json!([]),
            "string" => match schema["format"].as_str() {
                Some("date-time") => json!(chrono::Utc::now().to_rfc3339()),
                Some("date") => json!("1990-12-10"),
                Some("uuid") => json!(uuid::Uuid::nil()),
                _ => json!(plausible_text(name)),
            },
            "integer" | "number" => json!(if name.contains("price") { 1000 } else { 1 }),
            "boolean" => json!(false),
            _ => Value::Null,
        }
    }

    /// Every leaf under `schema` (optional ones too, through arrays' first elements).
    fn leaves(&self, schema: &Value, path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, Leaf)>) {
        let (schema, _) = self.resolve(schema);
        if path.len() > 6 {
            return;
        }
        if let Some(leaf) = self.leaf(schema) {
            out.push((path.clone(), leaf));
            return;
        }
        match self.kind(schema) {
            "object" => {
                for (key, property) in schema["properties"].as_object().into_iter().flatten() {
                    path.push(Step::Key(key.clone()));
                    self.leaves(property, path, out);
                    path.pop();
                }
            }
            "array" => {
                path.push(Step::First);
                self.leaves(&schema["items"], path, out);
                path.pop();
            }
            _ => {}
        }
    }

    /// The baseline of `root` with the leaf at `steps` present (its parents made from their
    /// own baselines) and replaced by [`PLACEHOLDER`].
    fn body_with(&self, root: &Value, steps: &[Step], fixtures: &Fixtures) -> Value {
        let mut body = self.baseline(root, "", fixtures, 0);
        let (mut value, mut schema) = (&mut body, self.resolve(root).0);
        for (index, step) in steps.iter().enumerate() {
            let last = index + 1 == steps.len();
            match step {
                Step::Key(key) => {
                    let property = &schema["properties"][key];
                    if !value.is_object() {
                        *value = json!({});
                    }
                    let object = value.as_object_mut().unwrap();
                    if last {
                        object.insert(key.clone(), json!(PLACEHOLDER));
                        break;
                    }
                    value = object.entry(key.clone()).or_insert_with(|| self.baseline(property, key, fixtures, 1));
                    schema = self.resolve(property).0;
                }
                Step::First => {
                    if !matches!(value.as_array(), Some(items) if !items.is_empty()) {
                        *value = json!([Value::Null]);
                    }
                    let items = value.as_array_mut().unwrap();
                    if last {
                        items[0] = json!(PLACEHOLDER);
                        break;
                    }
                    let element = self.resolve(&schema["items"]).0;
                    if items[0].is_null() {
                        items[0] = self.baseline(element, "", fixtures, 1);
                    }
                    value = &mut items[0];
                    schema = element;
                }
            }
        }
        body
    }
}

/// The field's path as the API names it: `items[0].price_minor`.
fn field_path(steps: &[Step]) -> String {
    let mut path = String::new();
    for step in steps {
        match step {
            Step::Key(key) if path.is_empty() => path.push_str(key),
            Step::Key(key) => {
                path.push('.');
                path.push_str(key);
            }
            Step::First => path.push_str("[0]"),
        }
    }
    path
}

/// A valid-looking text for a field called `name`.
fn plausible_text(name: &str) -> String {
    let value = match name {
        n if n.contains("email") => "a-zzuniqzz@example.com",
        n if n.contains("address") || n.contains("receiver") || n == "recipient" => {
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        }
        "token_id" => "1",
        "submitted_by" => "platform",
        "period" => "once",
        "slug" => "fuzz-zzuniqzz",
        "url" => HOOK_URL,
        "website" => "https://example.com",
        n if n.contains("password") => "correct horse battery staple",
        "currency" => "EUR",
        "country" => "GB",
        "symbol" => "FUZZ",
        "code" => "FUZZ-ZZUNIQZZ",
        "voucher_code" => "FUZZ-BASE",
        "name" => "Fuzz zzuniqzz",
        "payment_methods" => "card",
        "method" => "eth",
        "event_types" => "order.created",
        "action" => "pause",
        n if n.starts_with("amount") || n == "kyc_threshold" => "1000",
        "legal_name" => "Ada Lovelace",
        "document_number" => "123456789",
        "signature" => "0x00",
        _ => "x",
    };
    value.to_owned()
}

/// The resources of brand A the fuzzing addresses, and what some bodies need beyond their
/// required fields to be valid.
pub(crate) struct Fixtures {
    brand: i64,
    store: i64,
    campaign: i64,
    item: i64,
    reward: i64,
    voucher: i64,
    endpoint: i64,
    key: i64,
    invite: i64,
    member: i64,
    kyc: i64,
    document: i64,
    /// A QR code batch of the campaign, and one of its codes.
    batch: i64,
    code: String,
    /// A fresh counter code for the reward and token 1.
    counter: String,
}

impl Fixtures {
    /// Fields a component needs besides its required ones (a percent voucher needs its
    /// percentage, a token reward its token and amount, an order a real item).
    pub(crate) fn component(&self, name: &str) -> Value {
        match name {
            "NewReward" => json!({ "kind": "token", "token": "eth", "amount_per_redemption": "1000" }),
            "NewVoucher" => json!({ "kind": "percent", "percent_bps": 1000 }),
            "NewKey" => json!({ "permissions": ["campaigns-read"] }),
            "NewOrder" => json!({ "item_id": self.item }),
            "NewItem" => json!({ "supply": 10 }),
            "DecisionBody" => json!({ "reason": "The scan is cut off." }),
            "Scan" => json!({ "code": self.counter }),
            _ => json!({}),
        }
    }

    /// The value of a path parameter in `template`.
    pub(crate) fn path_value(&self, template: &str, name: &str) -> String {
        let id = match name {
            "brand_id" => self.brand,
            "store_id" => self.store,
            "campaign_id" => self.campaign,
            "reward_id" => self.reward,
            "voucher_id" => self.voucher,
            "endpoint_id" => self.endpoint,
            "key_id" => self.key,
            "invite_id" => self.invite,
            "account_id" => self.member,
            "kyc_id" => self.kyc,
            "document_id" => self.document,
            "batch_id" => self.batch,
            "seq" => 1,
            "format" => return "png".into(),
            "code" => return self.code.clone(),
            "token_id" => 1,
            "delivery_id" | "redemption_id" | "tx_id" => 999_999,
            "chain_id" => 31_337,
            "collection" => return "0x0000000000000000000000000000000000000001".into(),
            "kind" if template.contains("/exports/") => return "orders".into(),
            "kind" => return "front".into(),
            "session_id" | "order_id" => return uuid::Uuid::nil().to_string(),
            other => panic!("{template}: add a fixture for the path parameter {other}"),
        };
        id.to_string()
    }
}

/// The id in a creation's answer (`id`, or that of its `endpoint` or `key`).
fn created_id(body: &Value) -> Option<i64> {
    body["id"].as_i64().or_else(|| body["endpoint"]["id"].as_i64()).or_else(|| body["key"]["id"].as_i64())
}

/// Creates a resource through the API; an id that cannot exist when the API refuses (the
/// routes under it then answer 404, which the report shows).
async fn create(app: &TestApp, token: &str, path: &str, body: Value) -> (i64, Value) {
    let (status, answer) = app.call(Method::POST, path, token, Some(body)).await;
    match created_id(&answer) {
        Some(id) if status.is_success() => (id, answer),
        _ => {
            eprintln!("setup: POST {path} answered {status} {answer}; using 999999");
            (999_999, answer)
        }
    }
}

pub(crate) async fn fixtures(
    backoffice: &TestApp,
    redemption: &TestApp,
    world: &access::World,
    admin: &str,
) -> Fixtures {
    let brand = world.brand_a;
    let base = format!("/brands/{brand}");
    let item = json!({ "name": "Tee", "price_minor": 1000, "currency": "EUR", "supply": 10,
                       "payment_methods": ["card"] });
    let campaign_body = json!({ "name": "Fuzz base", "slug": "fuzz-base", "royalty_bps": 0, "items": [item] });
    let (campaign, answer) = create(backoffice, admin, &format!("{base}/campaigns"), campaign_body).await;
    let item = answer["items"][0]["id"].as_i64().unwrap_or(999_999);
    let reward_body = json!({ "kind": "token", "name": "Cashback", "token": "eth", "amount_per_redemption": "1000" });
    let (reward, _) = create(backoffice, admin, &format!("{base}/campaigns/{campaign}/rewards"), reward_body).await;
    let voucher_body = json!({ "code": "FUZZ-BASE", "kind": "percent", "percent_bps": 1000 });
    let (voucher, _) = create(backoffice, admin, &format!("{base}/vouchers"), voucher_body).await;
    let endpoint_body = json!({ "url": HOOK_URL, "event_types": ["order.created"] });
    let (endpoint, _) = create(backoffice, admin, &format!("{base}/webhooks"), endpoint_body).await;
    let key_body = json!({ "name": "fuzz", "permissions": ["campaigns-read"] });
    let (key, _) = create(backoffice, admin, &format!("{base}/api-keys"), key_body).await;
    let invite_body = json!({ "email": "invitee@example.com", "role": "staff" });
    let (invite, _) = create(backoffice, admin, &format!("{base}/invites"), invite_body).await;
    let (store, _) = create(backoffice, admin, &format!("{base}/stores"), json!({ "name": "Fuzz store" })).await;
    let (_, members) = backoffice.call(Method::GET, &format!("{base}/members"), admin, None).await;
    let member = members
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["role"] == "staff")
        .and_then(|m| m["account_id"].as_i64())
        .unwrap_or(999_999);

    // A KYC submission of another customer, with one document, for the reviewers' routes.
    let (_, applicant) = redemption.customer(Address::repeat_byte(0x42)).await;
    let details = json!({ "legal_name": "Ada Lovelace", "date_of_birth": "1990-12-10", "country": "GB",
                          "document_type": "passport", "document_number": "123456789" });
    redemption.call(Method::PUT, "/customers/me/kyc", &applicant, Some(details)).await;
    let upload = redemption.client.put(redemption.url("/customers/me/kyc/documents/front"));
    upload.bearer_auth(&applicant).header("content-type", "image/png").body(PNG).send().await.unwrap();
    let (_, submitted) = redemption.call(Method::POST, "/customers/me/kyc/submit", &applicant, None).await;
    let kyc = submitted["id"].as_i64().unwrap_or(999_999);
    let (_, case) = backoffice.call(Method::GET, &format!("/kyc/submissions/{kyc}"), admin, None).await;
    let document = case["documents"][0]["id"].as_i64().unwrap_or(999_999);
    if kyc == 999_999 || document == 999_999 {
        eprintln!("setup: no KYC submission ({submitted}); using 999999");
    }
    let batch_body = json!({ "reward_id": reward, "label": "Fuzz", "size": 2, "typed_addresses": true });
    let (batch, _) = create(backoffice, admin, &format!("{base}/campaigns/{campaign}/qr-batches"), batch_body).await;
    let nonce: Vec<u8> = sqlx::query_scalar("SELECT nonce FROM qr_codes WHERE batch_id = $1 AND seq = 1")
        .bind(batch)
        .fetch_optional(backoffice.resources.db())
        .await
        .unwrap()
        .unwrap_or_else(|| vec![0; 10]);
    let code = backoffice.resources.config().qr_code_key.brand_code(nonce.as_slice().try_into().unwrap());
    let counter = shared::qr::CounterClaim {
        customer_id: 1,
        wallet: Address::repeat_byte(0x42),
        reward_id: reward,
        token_id: alloy::primitives::U256::from(1),
        issued_at: chrono::Utc::now().timestamp(),
    };
    let counter = backoffice.resources.config().qr_code_key.counter_code(&counter);
    Fixtures {
        brand,
        store,
        campaign,
        item,
        reward,
        voucher,
        endpoint,
        key,
        invite,
        member,
        kyc,
        document,
        batch,
        code,
        counter,
    }
}

/// Where the bad value went.
#[derive(Debug, Clone)]
enum Target {
    Body(String),
    Query(String),
    Path(String),
    Header(String),
    RawBody,
    /// The unmutated baseline body: it must be accepted, or the fuzzing misses its target.
    Baseline,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Body(field) => write!(f, "body {field}"),
            Target::Query(name) => write!(f, "query {name}"),
            Target::Path(name) => write!(f, "path {{{name}}}"),
            Target::Header(name) => write!(f, "header {name}"),
            Target::RawBody => write!(f, "raw body"),
            Target::Baseline => write!(f, "baseline body"),
        }
    }
}

/// One request to send.
struct Probe {
    service: &'static str,
    base: String,
    method: Method,
    template: String,
    path: String,
    query: Vec<(String, String)>,
    header: Option<(String, HeaderValue)>,
    token: Option<String>,
    body: Option<(String, Vec<u8>)>,
    target: Target,
    mutation: &'static str,
}

impl Probe {
    /// The field a 400/422 must name, if any.
    fn must_name(&self) -> Option<&str> {
        match &self.target {
            Target::Body(field) | Target::Query(field) => Some(field),
            _ => None,
        }
    }
}

/// A broken promise, for the report.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    why: &'static str,
    route: String,
    target: String,
    mutation: &'static str,
    status: u16,
    excerpt: String,
}

/// Whether a problem's `errors[].field` names `field` (itself, inside it, or the array it is
/// the first element of).
fn names(problem: &Value, field: &str) -> bool {
    let parent = field.strip_suffix("[0]");
    problem["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).any(|named| {
        named == field
            || named.strip_prefix(field).is_some_and(|rest| rest.starts_with(['.', '[']))
            || parent == Some(named)
    })
}

fn judge(probe: &Probe, status: StatusCode, content_type: &str, body: &[u8]) -> Option<&'static str> {
    if status.is_server_error() {
        return Some("5xx");
    }
    if !status.is_client_error() {
        return None;
    }
    if !content_type.starts_with("application/problem+json") {
        return Some("4xx not problem+json");
    }
    let code = status.as_u16();
    match (code, probe.must_name(), &probe.target) {
        (400 | 422, _, Target::Baseline) => Some("baseline refused"),
        (400 | 422, Some(field), _) => {
            let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            (!names(&problem, field)).then_some("400/422 does not name the field")
        }
        (401 | 403 | 404 | 405 | 409 | 413 | 415 | 429, _, _) => None,
        (_, Some(_), _) => Some("unexpected 4xx"),
        _ => None,
    }
}

/// `bytes` with the markers of values that must be unique (slugs, codes, names, e-mails)
/// replaced by a number no other request uses, so no request fails as a duplicate of another.
fn unique(bytes: &[u8]) -> Vec<u8> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let Ok(text) = std::str::from_utf8(bytes) else { return bytes.to_vec() };
    if !text.contains("zzuniqzz") && !text.contains("ZZUNIQZZ") {
        return bytes.to_vec();
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed).to_string();
    text.replace("zzuniqzz", &n).replace("ZZUNIQZZ", &n).into_bytes()
}

async fn send(client: &reqwest::Client, probe: Probe) -> Result<(), Violation> {
    let mut url = reqwest::Url::parse(&format!("{}{}", probe.base, probe.path)).unwrap();
    if !probe.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&probe.query);
    }
    let mut request = client.request(probe.method.clone(), url);
    if let Some(token) = &probe.token {
        request = request.bearer_auth(token);
    }
    if let Some((name, value)) = &probe.header {
        request = request.header(name, value.clone());
    }
    if let Some((content_type, bytes)) = &probe.body {
        request = request.header("content-type", content_type).body(unique(bytes));
    }
    let violation = |why, status: u16, excerpt: String| Violation {
        why,
        route: format!("{} {} {}", probe.service, probe.method, probe.template),
        target: probe.target.to_string(),
        mutation: probe.mutation,
        status,
        excerpt,
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Err(violation("no answer", 0, e.to_string())),
    };
    let status = response.status();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.bytes().await.unwrap_or_default();
    match judge(&probe, status, &content_type, &body) {
        None => Ok(()),
        Some(why) => {
            let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            Err(violation(why, status.as_u16(), format!("[{content_type}] {text}")))
        }
    }
}

/// Every request the fuzzing sends to one operation.
#[allow(clippy::too_many_arguments)]
fn probes(
    doc: &Doc,
    fixtures: &Fixtures,
    service: &'static str,
    base: &str,
    method: &Method,
    template: &str,
    token: Option<&String>,
    seen: &mut HashSet<String>,
) -> Vec<Probe> {
    let operation = &doc.0["paths"][template][method.as_str().to_ascii_lowercase()];
    let parameters: Vec<&Value> = operation["parameters"].as_array().into_iter().flatten().collect();
    let path_params: Vec<&str> =
        parameters.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect();
    let path_with = |mutated: Option<(&str, &str)>| {
        let mut path = template.to_owned();
        for name in &path_params {
            let value = match mutated {
                Some((target, value)) if target == *name => value.to_owned(),
                _ => fixtures.path_value(template, name),
            };
            path = path.replace(&format!("{{{name}}}"), &value);
        }
        assert!(!path.contains('{'), "{template}: a path parameter is not declared");
        path
    };

    // The body: JSON with a schema, or raw bytes of the first declared type.
    let content = &operation["requestBody"]["content"];
    let json_schema = content
        .get("application/json")
        .map(|c| &c["schema"])
        .filter(|schema| doc.kind(doc.resolve(schema).0) == "object");
    let raw_type = match json_schema {
        Some(_) => None,
        None => content.as_object().and_then(|types| types.keys().next()).cloned(),
    };
    let baseline_body: Option<(String, Vec<u8>)> = match (json_schema, &raw_type) {
        (Some(schema), _) => {
            Some(("application/json".into(), doc.baseline(schema, "", fixtures, 0).to_string().into_bytes()))
        }
        (None, Some(raw)) if raw.starts_with("image/") => Some((raw.clone(), PNG.to_vec())),
        (None, Some(raw)) if raw == "text/csv" => Some((raw.clone(), b"code\nFUZZ1\n".to_vec())),
        (None, Some(raw)) => Some((raw.clone(), b"{}".to_vec())),
        (None, None) => None,
    };

    let mut out = Vec::new();
    let mut push = |target: Target,
                    mutation: &'static str,
                    path: String,
                    query: Vec<(String, String)>,
                    header: Option<(String, HeaderValue)>,
                    body: Option<(String, Vec<u8>)>| {
        if seen.insert(format!("{service} {method} {template} {target} {mutation}")) {
            out.push(Probe {
                service,
                base: base.to_owned(),
                method: method.clone(),
                template: template.to_owned(),
                path,
                query,
                header,
                token: token.cloned(),
                body,
                target,
                mutation,
            });
        }
    };

    if let Some(schema) = json_schema {
        let mut leaves = Vec::new();
        doc.leaves(schema, &mut Vec::new(), &mut leaves);
        for (steps, leaf) in leaves {
            let text = doc.body_with(schema, &steps, fixtures).to_string();
            let field = field_path(&steps);
            for (label, raw) in mutations(leaf) {
                let body = text.replace(&format!("\"{PLACEHOLDER}\""), &raw);
                let body = Some(("application/json".to_owned(), body.into_bytes()));
                push(Target::Body(field.clone()), label, path_with(None), vec![], None, body);
            }
        }
    }
    if let Some(raw) = &raw_type {
        let bodies: [(&'static str, Vec<u8>); 3] =
            [("empty", vec![]), ("2 MiB of zeros", vec![0; 2 << 20]), ("NUL byte", b"a\0b".to_vec())];
        for (label, bytes) in bodies {
            push(Target::RawBody, label, path_with(None), vec![], None, Some((raw.clone(), bytes)));
        }
    }
    // The required query parameters, valid, beside the one being mutated.
    let required: Vec<(String, String)> = parameters
        .iter()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .filter_map(|p| p["name"].as_str())
        .map(|name| (name.to_owned(), fixtures.path_value(template, name)))
        .collect();
    for parameter in &parameters {
        let name = parameter["name"].as_str().unwrap_or_default();
        match parameter["in"].as_str() {
            Some("query") => {
                let timestamp = parameter["schema"]["format"] == "date-time";
                for (label, value) in query_mutations(timestamp) {
                    let mut query: Vec<(String, String)> =
                        required.iter().filter(|(n, _)| n != name).cloned().collect();
                    query.push((name.to_owned(), value));
                    push(Target::Query(name.into()), label, path_with(None), query, None, baseline_body.clone());
                }
            }
            Some("path") => {
                for (label, value) in path_mutations() {
                    let path = path_with(Some((name, &value)));
                    push(Target::Path(name.into()), label, path, vec![], None, baseline_body.clone());
                }
            }
            Some("header") => {
                for (label, value) in header_mutations() {
                    let header = Some((name.to_owned(), value));
                    push(Target::Header(name.into()), label, path_with(None), vec![], header, baseline_body.clone());
                }
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn every_field_of_every_route_refuses_bad_input_without_a_5xx() {
    let started = Instant::now();
    let db = TestDb::create().await;
    let rpc = testing::required_env("RPC_URL");
    // Thousands of requests from one address in a minute: rate limits off (they are tested
    // elsewhere), so every request reaches validation; no DNS here, so webhooks may be local.
    let extra = [
        ("RATE_LIMIT_IP_PER_MINUTE", "0"),
        ("RATE_LIMIT_AUTH_MAX", "1000000"),
        ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
        // So the Stripe webhook reads its signature header instead of refusing outright.
        ("STRIPE_WEBHOOK_SECRET", "whsec_ZnV6emluZy1vbmx5LXNlY3JldA"),
    ];
    let mut apps = Vec::new();
    for spec in cli::SERVICES {
        apps.push((spec, TestApp::spawn_with(spec, testing::config(&db.url, &rpc, &extra)).await));
    }
    let app = |name: &str| &apps.iter().find(|(spec, _)| spec.name == name).unwrap().1;
    let world = access::world(app("backoffice")).await;
    let token_of = |wanted: fn(&Who) -> bool| {
        world.principals.iter().find(|(who, _)| wanted(who)).and_then(|(_, token)| token.clone()).unwrap()
    };
    let admin = token_of(|who| matches!(who, Who::Platform(PlatformRole::Admin)));
    let customer = token_of(|who| matches!(who, Who::Customer));
    let fixtures = fixtures(app("backoffice"), app("redemption"), &world, &admin).await;

    let mut seen = HashSet::new();
    let mut all = Vec::new();
    let mut baselines = Vec::new();
    for (spec, app) in &apps {
        let doc = Doc(serde_json::to_value(shared::service::openapi(*spec)).unwrap());
        let base = format!("http://{}", app.address);
        for (method, template, permission) in access::operations(*spec) {
            let token = match permission {
                None => None,
                Some(Permission::Customer) => Some(&customer),
                Some(_) => Some(&admin),
            };
            let probes = probes(&doc, &fixtures, spec.name, &base, &method, &template, token, &mut seen);
            // The unmutated request, sent last (it may change what the others find).
            if let Some(first) = probes.iter().find(|p| matches!(p.target, Target::Body(_))) {
                let schema = &doc.0["paths"][&template][method.as_str().to_ascii_lowercase()]["requestBody"]["content"]
                    ["application/json"]["schema"];
                let body = doc.baseline(schema, "", &fixtures, 0).to_string().into_bytes();
                let path = (first.path.clone(), first.token.clone());
                baselines.push(Probe {
                    body: Some(("application/json".into(), body)),
                    target: Target::Baseline,
                    mutation: "none",
                    query: vec![],
                    header: None,
                    path: path.0,
                    token: path.1,
                    service: first.service,
                    base: first.base.clone(),
                    method: first.method.clone(),
                    template: first.template.clone(),
                });
            }
            all.extend(probes);
        }
    }
    let sent = all.len() + baselines.len();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let fuzzing = Instant::now();
    let mut violations: Vec<Violation> = stream::iter(all)
        .map(|probe| send(&client, probe))
        .buffer_unordered(CONCURRENCY)
        .filter_map(|result| async move { result.err() })
        .collect()
        .await;
    for probe in baselines {
        violations.extend(send(&client, probe).await.err());
    }
    violations.sort();

    let mut causes: BTreeMap<(&str, &str, u16), usize> = BTreeMap::new();
    for v in &violations {
        *causes.entry((v.why, v.mutation, v.status)).or_default() += 1;
    }
    eprintln!(
        "fuzz: {sent} requests in {:.1}s ({:.1}s with setup), {} violations",
        fuzzing.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64(),
        violations.len()
    );
    let report: Vec<String> = violations
        .iter()
        .map(|v| format!("{} | {} | {} | {} → {} | {}", v.why, v.route, v.target, v.mutation, v.status, v.excerpt))
        .collect();
    let summary: Vec<String> =
        causes.iter().map(|((why, mutation, status), n)| format!("{n:>4} × {why}: {mutation} → {status}")).collect();
    assert!(
        violations.is_empty(),
        "{} of {sent} requests broke a promise:\n{}\n\nby cause:\n{}",
        violations.len(),
        report.join("\n"),
        summary.join("\n")
    );
}
