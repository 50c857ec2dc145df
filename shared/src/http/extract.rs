//! Extractors whose rejections are problem documents, so a malformed request never gets a
//! plain-text or 500 answer.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::*},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use super::problem::{ApiError, FieldError, FieldErrors};

/// A JSON body. Syntax errors are 400; a field of the wrong type, out of range, missing, or
/// holding text the platform does not accept (see [`check_text`]) is a 422 naming the field (its
/// path, e.g. `items[0].price`), every such field at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| {
                m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType("expected a body of type application/json".into()));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(ApiError::from)?;
        // First the document (syntax, and numbers JSON allows but no field can hold, e.g. 1e400),
        // then every string in it, then the typed request.
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        let document: serde_json::Value = serde_path_to_error::deserialize(deserializer).map_err(json_error)?;
        let mut errors = FieldErrors::default();
        check_document(&document, &mut String::new(), &mut errors);
        errors.finish()?;
        serde_path_to_error::deserialize(document).map(Json).map_err(json_error)
    }
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let field = err.path().to_string();
    let inner = err.into_inner();
    // serde_json appends " at line L column C": useful for syntax, noise for fields.
    let message = inner.to_string();
    let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m);
    let in_a_field = field != "." && !field.is_empty();
    if inner.is_data() || (in_a_field && message.starts_with("number out of range")) {
        let field = if in_a_field { field } else { "body".to_owned() };
        ApiError::Validation(vec![FieldError::new(field, message)])
    } else {
        ApiError::BadRequest(format!("malformed JSON: {inner}"))
    }
}

/// Walks a JSON document and notes every string [`check_text`] refuses, by its path.
fn check_document(value: &serde_json::Value, path: &mut String, errors: &mut FieldErrors) {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            let name = path.rsplit(['.', '[']).next().unwrap_or_default();
            if let Err(reason) = check_text(name, text) {
                errors.add(if path.is_empty() { "body".to_owned() } else { path.clone() }, reason);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                check_document(item, path, errors);
                path.truncate(len);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if let Err(reason) = check_text("", key) {
                    errors.add(path.clone(), format!("is not an acceptable name: {reason}"));
                } else {
                    check_document(member, path, errors);
                }
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Fields whose text may span lines (`\n`, `\r`, `\t` allowed): descriptions, the EIP-4361
/// message a wallet signs, a reviewer's reason.
const MULTILINE_FIELDS: &[&str] = &["description", "message", "reason"];
/// The most bytes a one-line text may have (an index key must stay under PostgreSQL's limit).
pub const MAX_LINE_BYTES: usize = 2_000;
/// The most bytes a multi-line text may have.
pub const MAX_MULTILINE_BYTES: usize = 20_000;
/// Timestamps a request may carry: what any campaign, voucher or report can mean.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// The rule every text a client sends goes through (JSON strings and object keys, query
/// parameters): no NUL or other control character (C0, DEL, C1) except line breaks and tabs in
/// [`MULTILINE_FIELDS`]; at most [`MAX_LINE_BYTES`] (or [`MAX_MULTILINE_BYTES`]); and a text that
/// is a timestamp must lie between the years 1970 and 9999. Fields check their own, tighter
/// bounds after this.
pub fn check_text(field: &str, text: &str) -> Result<(), String> {
    let multiline = MULTILINE_FIELDS.contains(&field);
    let max = if multiline { MAX_MULTILINE_BYTES } else { MAX_LINE_BYTES };
    if text.len() > max {
        return Err(format!("is too long (at most {max} bytes)"));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if let Some(c) = text.chars().find(|c| c.is_control() && !allowed(*c)) {
        return Err(match c {
            '\0' => "must not contain NUL characters".to_owned(),
            '\n' | '\r' => "must be a single line".to_owned(),
            other => format!("must not contain control characters (U+{:04X})", u32::from(other)),
        });
    }
    if (16..=40).contains(&text.len())
        && text.contains('T')
        && let Ok(at) = text.parse::<chrono::DateTime<chrono::FixedOffset>>()
        && !YEARS.contains(&chrono::Datelike::year(&at))
    {
        return Err(format!("must be between the years {} and {}", YEARS.start(), YEARS.end()));
    }
    Ok(())
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query-string parameters: every value goes through [`check_text`], and a parameter that does
/// not parse is a 422 naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default().as_bytes();
        let mut errors = FieldErrors::default();
        for (name, value) in url::form_urlencoded::parse(query) {
            if let Err(reason) = check_text("", &name).and_then(|()| check_text("", &value)) {
                errors.add(name.chars().filter(|c| !c.is_control()).take(64).collect::<String>(), reason);
            }
        }
        errors.finish()?;
        let deserializer = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query));
        serde_path_to_error::deserialize(deserializer).map(Query).map_err(|err| {
            let field = err.path().to_string();
            let field = if field == "." || field.is_empty() { "query".to_owned() } else { field };
            ApiError::Validation(vec![FieldError::new(field, err.into_inner().to_string())])
        })
    }
}

/// A raw request body (uploads); too large is a 413 problem, not plain text.
#[derive(Debug, Clone, Default)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Body(Bytes::from_request(req, state).await?))
    }
}

/// Path parameters. A parameter that does not parse (a malformed id) is a 404: no resource
/// can have that name.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) = axum::extract::Path::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => ApiError::NotFound(e.body_text()),
            other => ApiError::Internal(anyhow::anyhow!("path extraction misconfigured: {}", other.body_text())),
        }
    }
}
