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
use maud::html;
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
    pages,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::Customer, routes!(status, save_details)))
        .routes(require(Permission::Customer, routes!(upload_document)))
        .routes(require(Permission::Customer, routes!(submit)))
        .route("/kyc", axum::routing::get(page))
        .route("/assets/kyc.js", axum::routing::get(|| async { pages::asset(crate::codes::JAVASCRIPT, SCRIPT) }))
}

/// The KYC page's script.
const SCRIPT: &str = include_str!("../assets/kyc.js");

/// The customer's KYC page (`/kyc`): sign in with the wallet; the details and document pictures
/// of the current submission, what is still missing, and where the review stands.
async fn page(State(state): State<AppState>, headers: HeaderMap) -> axum::response::Response {
    let scripts = ["/assets/wallet.js", "/assets/kyc.js"];
    let Some((customer, _)) = crate::counter::page_customer(&state, &headers).await else {
        let body = crate::counter::sign_in_card("Verify your identity", "to verify your identity");
        return pages::page("Verify your identity", &scripts, body);
    };
    let latest = match state.db().acquire().await {
        Ok(mut conn) => kyc::submission::latest_of(&mut conn, customer).await.map_err(ApiError::from),
        Err(e) => Err(e.into()),
    };
    let latest = match latest {
        Ok(latest) => latest.map(CustomerKyc::from),
        Err(e) => {
            let body = html! { section.card { p.status data-kind="bad" role="status" { (pages::refusal(&e)) } } };
            return pages::page("Verify your identity", &scripts, body);
        }
    };
    let editable = latest.as_ref().is_none_or(|k| matches!(k.state, KycState::Draft | KycState::Rejected));
    let (said, kind) = match latest.as_ref().map(|k| k.state) {
        None => ("Tell us who you are, add a picture of your document, then submit it for review.".to_owned(), "info"),
        Some(KycState::Draft) => {
            ("Your details are saved. Add the pictures still missing, then submit.".into(), "info")
        }
        Some(KycState::Pending | KycState::InReview) => {
            ("Submitted: awaiting review. You will be able to claim rewards that need it once approved.".into(), "info")
        }
        Some(KycState::Approved) => ("Verified: your identity is approved.".into(), "good"),
        Some(KycState::Rejected) => (
            format!(
                "Not approved: {}. Correct your details and submit again.",
                latest.as_ref().and_then(|k| k.rejection_reason.clone()).unwrap_or_default()
            ),
            "bad",
        ),
    };
    let value = |f: fn(&CustomerKyc) -> String| latest.as_ref().map(f).unwrap_or_default();
    let document_type = latest.as_ref().map_or(DocumentType::Passport, |k| k.document_type);
    let draft = latest.as_ref().filter(|k| k.state == KycState::Draft);
    let body = html! {
        section.card {
            h1 { "Verify your identity" }
            p.status #status role="status" aria-live="polite" data-kind=(kind) { (said) }
        }
        @if editable {
            section.card aria-labelledby="details-title" {
                h2 #details-title { "Your details" }
                form #details {
                    label for="legal_name" { "Full name, as on the document" }
                    input #legal_name type="text" name="legal_name" autocomplete="name" required
                        value=(value(|k| k.legal_name.clone()));
                    label for="date_of_birth" { "Date of birth (YYYY-MM-DD)" }
                    input #date_of_birth type="text" name="date_of_birth" autocomplete="bday" inputmode="numeric"
                        placeholder="1990-12-31" required value=(value(|k| k.date_of_birth.to_string()));
                    label for="country" { "Country that issued the document (two letters, e.g. FR)" }
                    input #country type="text" name="country" autocomplete="country" maxlength="2" required
                        value=(value(|k| k.country.clone()));
                    label for="document_type" { "Document" }
                    select #document_type name="document_type" {
                        @for (kind, name) in [(DocumentType::Passport, "Passport"), (DocumentType::IdCard, "Identity card"),
                                              (DocumentType::DrivingLicence, "Driving licence")] {
                            option value=(kind.as_str()) selected[kind == document_type] { (name) }
                        }
                    }
                    label for="document_number" { "Document number" }
                    input #document_number type="text" name="document_number" autocomplete="off" required
                        value=(value(|k| k.document_number.clone()));
                    button type="submit" { "Save details" }
                }
            }
        }
        @if let Some(draft) = draft {
            section.card aria-labelledby="pictures-title" {
                h2 #pictures-title { "Pictures of your document" }
                @for kind in document_type.required_images() {
                    @let done = draft.documents.iter().any(|d| d.kind == *kind);
                    label for=(format!("document-{}", kind.as_str())) {
                        (picture_name(*kind)) @if done { " (added)" }
                    }
                    input id=(format!("document-{}", kind.as_str())) type="file" accept="image/jpeg,image/png,application/pdf"
                        data-document=(kind.as_str());
                }
                button #submit-kyc type="button" disabled[!draft.missing_documents.is_empty()] { "Submit for review" }
            }
        }
    };
    pages::page("Verify your identity", &scripts, body)
}

fn picture_name(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Front => "The document's front (a passport's photo page)",
        DocumentKind::Back => "The document's back",
        DocumentKind::Selfie => "You holding the document",
    }
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
