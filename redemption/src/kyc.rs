//! A customer's own KYC: save identity details, upload document images, submit for review,
//! see the outcome (and the reason, when rejected), start again after a rejection.
//!
//! Images arrive as the raw request body with their `Content-Type`, are checked by their bytes,
//! encrypted and stored under a key the platform picks; the rules live in `shared::kyc`.

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{Caller, Permission, require},
    http::{ApiError, ApiResult, Problem, extract::Json, extract::Path},
    kyc::{
        self, Details, DetailsInput, Document, DocumentFormat, DocumentKind, DocumentType, DocumentVault, KycState,
        Submission,
        documents::{self, NewDocument},
    },
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::Customer, routes!(status, save_details)))
        .routes(require(Permission::Customer, routes!(upload_document)))
        .routes(require(Permission::Customer, routes!(submit)))
}

/// The customer's KYC as they see it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CustomerKyc {
    id: i64,
    /// `draft` until submitted; then `pending` / `in_review` until decided.
    state: KycState,
    legal_name: String,
    #[schema(value_type = String, format = Date)]
    date_of_birth: NaiveDate,
    country: String,
    document_type: DocumentType,
    document_number: String,
    /// The images uploaded so far.
    documents: Vec<Document>,
    /// The images still needed before the draft can be submitted.
    missing_documents: Vec<DocumentKind>,
    submitted_at: Option<DateTime<Utc>>,
    decided_at: Option<DateTime<Utc>>,
    /// Why it was rejected; save new details to start again.
    rejection_reason: Option<String>,
}

impl From<Submission> for CustomerKyc {
    fn from(s: Submission) -> Self {
        let missing_documents = match s.state {
            KycState::Draft => s
                .document_type
                .required_images()
                .iter()
                .copied()
                .filter(|kind| !s.documents.iter().any(|d| d.kind == *kind))
                .collect(),
            _ => Vec::new(),
        };
        Self {
            id: s.id,
            state: s.state,
            rejection_reason: s.decision_reason.filter(|_| s.state == KycState::Rejected),
            legal_name: s.legal_name,
            date_of_birth: s.date_of_birth,
            country: s.country,
            document_type: s.document_type,
            document_number: s.document_number,
            documents: s.documents,
            missing_documents,
            submitted_at: s.submitted_at,
            decided_at: s.decided_at,
        }
    }
}

/// What names a transition in the workflow history: the request, so a replay is a no-op.
fn cause(caller: &Caller) -> String {
    caller.meta.request_id.clone().unwrap_or_else(shared::auth::random_token)
}

/// The customer's latest KYC submission.
#[utoipa::path(get, path = "/customers/me/kyc", tag = "kyc", responses(
    (status = 200, body = CustomerKyc),
    (status = 404, description = "Nothing submitted yet", body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<CustomerKyc>> {
    let customer = caller.customer()?.0;
    let mut conn = state.db().acquire().await?;
    let latest = kyc::submission::latest_of(&mut conn, customer).await?;
    latest.map(|s| Json(s.into())).ok_or_else(|| ApiError::NotFound("no KYC submission yet".into()))
}

/// Saves identity details on the customer's draft, starting a new one if there is none (the
/// first time, or after a rejection). Refused while a submission awaits review or once verified.
#[utoipa::path(put, path = "/customers/me/kyc", tag = "kyc", request_body = DetailsInput, responses(
    (status = 200, description = "The draft was updated", body = CustomerKyc),
    (status = 201, description = "A new draft was started", body = CustomerKyc),
    (status = 409, description = "Awaiting review, or already verified", body = Problem),
    (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn save_details(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<DetailsInput>,
) -> ApiResult<(StatusCode, Json<CustomerKyc>)> {
    let customer = caller.customer()?.0;
    let details = Details::try_from(input)?;
    let mut tx = state.db().begin().await?;
    let (draft, created) = kyc::submission::save_draft(&mut tx, customer, &details).await?;
    audit::record(
        &mut tx,
        &caller,
        Entry::new("kyc.details-saved", format!("kyc:{}", draft.id))
            .after(serde_json::json!({ "created": created, "document_type": details.document_type() })),
    )
    .await?;
    tx.commit().await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(draft.into())))
}

/// Uploads one document image to the draft as the raw body (`Content-Type: image/jpeg`,
/// `image/png` or `application/pdf`; the bytes must be what the header says), replacing an
/// earlier image of the same kind. Stored encrypted.
#[utoipa::path(put, path = "/customers/me/kyc/documents/{kind}", tag = "kyc",
    params(("kind" = DocumentKind, Path, description = "front, back or selfie")),
    request_body(description = "The image, as raw bytes",
        content((Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "application/pdf"))),
    responses(
        (status = 201, body = Document),
        (status = 409, description = "No draft (save details first), or it was already submitted", body = Problem),
        (status = 415, body = Problem),
        (status = 422, description = "Empty, too large, or not the declared format (field `file`)", body = Problem),
))]
#[tracing::instrument(skip_all, fields(kind = kind.as_str()))]
async fn upload_document(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<DocumentKind>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let customer = caller.customer()?.0;
    let max = state.config().kyc.max_document_bytes;
    let bytes = read_body(&headers, body, max).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let format = DocumentFormat::check_upload(content_type, &bytes, max)?;

    let vault = DocumentVault::new(state.storage().clone(), &state.config().kyc);
    let mut tx = state.db().begin().await?;
    let draft = kyc::submission::lock_draft(&mut tx, customer).await?;
    let key = documents::storage_key(customer, draft);
    vault.put(&key, bytes.clone()).await?;
    let new = NewDocument { submission: draft, kind, format, bytes: &bytes, storage_key: &key };
    let (document, replaced) = match record_upload(tx, &caller, new).await {
        Ok(done) => done,
        Err(e) => {
            forget(&vault, &key).await;
            return Err(e);
        }
    };
    if let Some(old) = replaced {
        forget(&vault, &old).await;
    }
    Ok((StatusCode::CREATED, Json(document)))
}

/// Records the stored image and commits.
async fn record_upload(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    caller: &Caller,
    new: NewDocument<'_>,
) -> ApiResult<(Document, Option<String>)> {
    let submission = new.submission;
    let (document, replaced) = documents::record(&mut tx, new).await?;
    let entry = Entry::new("kyc.document-uploaded", format!("kyc:{submission}")).after(&document);
    audit::record(&mut tx, caller, entry).await?;
    tx.commit().await?;
    Ok((document, replaced))
}

/// Removes an object nothing points at (any more); a failure leaves an unreadable orphan.
async fn forget(vault: &DocumentVault, key: &str) {
    if let Err(e) = vault.delete(key).await {
        tracing::warn!(error = %e, key, "could not delete an orphaned KYC document");
    }
}

/// The body, up to `max` bytes; more is refused naming the field `file`.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> ApiResult<Bytes> {
    let too_large = || ApiError::validation("file", format!("must be at most {max} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, max).await.map_err(|e| match declared {
        // Within the declared length the limit cannot trip: the body itself broke off.
        Some(_) => ApiError::BadRequest(format!("the body could not be read: {e}")),
        None => too_large(),
    })
}

/// Submits the draft for review; it must have the images its document type needs.
#[utoipa::path(post, path = "/customers/me/kyc/submit", tag = "kyc", responses(
    (status = 200, body = CustomerKyc),
    (status = 409, description = "No draft, awaiting review, or already verified", body = Problem),
    (status = 422, description = "Images missing (field `documents`)", body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn submit(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<CustomerKyc>> {
    let customer = caller.customer()?.0;
    let provider = kyc::provider::configured();
    let mut tx = state.db().begin().await?;
    let submitted =
        kyc::submission::submit(&mut tx, customer, provider.as_ref(), &cause(&caller), &caller.principal.actor())
            .await?;
    let entry = Entry::new("kyc.submitted", format!("kyc:{}", submitted.id))
        .before(serde_json::json!({ "state": KycState::Draft }))
        .after(serde_json::json!({ "state": submitted.state, "provider": submitted.provider }));
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(Json(submitted.into()))
}
