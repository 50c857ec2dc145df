//! The KYC review queue (platform staff holding `kyc-review`: admins and support): list
//! customers' submissions, read one, view its document images (decrypted), claim it, approve
//! or reject it with a reason.
//!
//! Every read of a submission's details or images and every decision is audited in the same
//! transaction; a decision also appends `kyc.approved` / `kyc.rejected` to the outbox.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{Caller, Permission, require},
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Json, Path, Query},
    },
    kyc::{self, Decision, DocumentVault, KycState, QueueItem, Submission, SubmissionId},
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::KycReview, routes!(queue)))
        .routes(require(Permission::KycReview, routes!(detail)))
        .routes(require(Permission::KycReview, routes!(document)))
        .routes(require(Permission::KycReview, routes!(claim)))
        .routes(require(Permission::KycReview, routes!(approve)))
        .routes(require(Permission::KycReview, routes!(reject)))
}

/// Which part of the queue.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueParams {
    /// Only submissions in this state: `pending`, `in_review`, `approved` or `rejected`
    /// (default: all, pending first).
    status: Option<String>,
    /// At most this many (1–200, default 50).
    limit: Option<i64>,
    /// Skip this many (default 0).
    offset: Option<i64>,
}

/// A page of the queue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuePage {
    items: Vec<QueueItem>,
    limit: i64,
    offset: i64,
    /// The `offset` of the next page, when there may be one.
    next_offset: Option<i64>,
}

/// The deepest page of the queue a client may ask for (far beyond any real queue).
const MAX_OFFSET: i64 = 1_000_000_000;

impl QueueParams {
    fn parse(&self) -> ApiResult<(Option<KycState>, i64, i64)> {
        let mut errors = Vec::new();
        let status = match self.status.as_deref().map(str::parse::<KycState>) {
            None => None,
            Some(Ok(state)) if state != KycState::Draft => Some(state),
            Some(_) => {
                errors.push(FieldError::new("status", "must be pending, in_review, approved or rejected"));
                None
            }
        };
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            errors.push(FieldError::new("limit", "must be between 1 and 200"));
        }
        let offset = self.offset.unwrap_or(0);
        if !(0..=MAX_OFFSET).contains(&offset) {
            errors.push(FieldError::new("offset", format!("must be between 0 and {MAX_OFFSET}")));
        }
        match errors.is_empty() {
            true => Ok((status, limit, offset)),
            false => Err(ApiError::Validation(errors)),
        }
    }
}

/// The review queue: submitted KYC cases, pending first, oldest first.
#[utoipa::path(get, path = "/kyc/submissions", tag = "kyc", params(QueueParams), responses(
    (status = 200, body = QueuePage),
    (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn queue(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<QueueParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (status, limit, offset) = params.parse()?;
    let mut conn = state.db().acquire().await?;
    let items = kyc::submission::queue(&mut conn, status, limit, offset).await?;
    let next_offset = (items.len() as i64 == limit).then(|| offset.saturating_add(limit));
    let page = QueuePage { items, limit, offset, next_offset };
    match shared::pages::wants_html(&headers) {
        true => Ok(queue_page(&page, status)),
        false => Ok(Json(page).into_response()),
    }
}

/// The review queue's page.
fn queue_page(page: &QueuePage, status: Option<KycState>) -> Response {
    let body = maud::html! {
        h1 { "KYC review" }
        section.card aria-labelledby="queue-title" {
            h2 #queue-title { (status.map_or("Every submission, pending first", |s| s.as_str())) }
            p { "Show: "
                a href="/kyc/submissions?status=pending" { "pending" } " · "
                a href="/kyc/submissions?status=in_review" { "in review" } " · "
                a href="/kyc/submissions?status=approved" { "approved" } " · "
                a href="/kyc/submissions?status=rejected" { "rejected" } " · "
                a href="/kyc/submissions" { "all" } }
            @if page.items.is_empty() { p.muted { "Nothing to review." } } @else {
                div.table { table {
                    thead { tr { th scope="col" { "Submission" } th scope="col" { "Name" } th scope="col" { "Country" }
                                 th scope="col" { "Document" } th scope="col" { "State" } th scope="col" { "Submitted" } } }
                    tbody { @for item in &page.items { tr {
                        td { a href=(format!("/kyc/submissions/{}", item.id)) { "#" (item.id) } }
                        td { (item.legal_name) } td { (item.country) }
                        td { (item.document_type.as_str()) " · " (item.documents) " pictures" }
                        td { (crate::pages::badge(item.state.as_str())) }
                        td { (item.submitted_at.map(crate::pages::when).unwrap_or_default()) }
                    } } }
                } }
            }
            @if let Some(next) = page.next_offset {
                p { a href=(format!("/kyc/submissions?offset={next}&limit={}{}", page.limit,
                        status.map(|s| format!("&status={}", s.as_str())).unwrap_or_default())) { "Next page" } }
            }
        }
    };
    shared::pages::staff_page("KYC review", &[], &crate::pages::platform_nav(), body)
}

/// One submission's page: its details, its pictures (each view audited) and the decision.
fn submission_page(submission: &Submission) -> Response {
    let id = submission.id;
    let open = matches!(submission.state, KycState::Pending | KycState::InReview);
    let body = maud::html! {
        h1 { "KYC submission #" (id) }
        section.card aria-labelledby="details-title" {
            h2 #details-title { "Details" }
            dl.facts {
                dt { "State" } dd #kyc-state { (crate::pages::badge(submission.state.as_str())) }
                dt { "Legal name" } dd { (submission.legal_name) }
                dt { "Date of birth" } dd { (submission.date_of_birth) }
                dt { "Country" } dd { (submission.country) }
                dt { "Document" } dd { (submission.document_type.as_str()) " " span.hash { (submission.document_number) } }
                dt { "Submitted" } dd { (submission.submitted_at.map(crate::pages::when).unwrap_or_default()) }
                @if let Some(reason) = &submission.decision_reason { dt { "Decision note" } dd { (reason) } }
            }
        }
        section.card aria-labelledby="documents-title" {
            h2 #documents-title { "Pictures" }
            @for document in &submission.documents {
                @let src = format!("/kyc/submissions/{id}/documents/{}", document.id);
                figure {
                    @if document.content_type.starts_with("image/") {
                        img.document src=(src) alt=(format!("The {} of the document", document.kind.as_str().replace('_', " ")));
                    }
                    figcaption { (document.kind.as_str().replace('_', " ")) " · " a href=(src) { "open" } }
                }
            }
        }
        @if open {
            section.card aria-labelledby="decide-title" {
                h2 #decide-title { "Decision" }
                form #approve data-api=(format!("/kyc/submissions/{id}/approve")) {
                    label for="approve-note" { "Note (optional)" }
                    input #approve-note type="text" name="reason" maxlength="500";
                    button type="submit" { "Approve" }
                    p.status role="status" aria-live="polite" {}
                }
                form #reject data-api=(format!("/kyc/submissions/{id}/reject")) {
                    label for="reject-reason" { "Why it is rejected (the customer sees this)" }
                    input #reject-reason type="text" name="reason" maxlength="500" required;
                    button.secondary type="submit" { "Reject" }
                    p.status role="status" aria-live="polite" {}
                }
            }
        }
    };
    shared::pages::staff_page(&format!("KYC #{id}"), &[], &crate::pages::platform_nav(), body)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SubmissionPath {
    kyc_id: i64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DocumentPath {
    kyc_id: i64,
    document_id: i64,
}

/// One submission with its details and document list. Audited (`kyc.viewed`).
#[utoipa::path(get, path = "/kyc/submissions/{kyc_id}", tag = "kyc", params(("kyc_id" = i64, Path)), responses(
    (status = 200, body = Submission),
    (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(kyc.id = path.kyc_id))]
async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<SubmissionPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut tx = state.db().begin().await?;
    let submission = kyc::submission::get_submitted(&mut tx, SubmissionId::new(path.kyc_id)).await?;
    audit::record(&mut tx, &caller, Entry::new("kyc.viewed", format!("kyc:{}", submission.id))).await?;
    tx.commit().await?;
    match shared::pages::wants_html(&headers) {
        true => Ok(submission_page(&submission)),
        false => Ok(Json(submission).into_response()),
    }
}

/// One document image, decrypted, with its content type; never cached. Audited
/// (`kyc.document-viewed`) before a byte is sent.
#[utoipa::path(get, path = "/kyc/submissions/{kyc_id}/documents/{document_id}", tag = "kyc",
    params(("kyc_id" = i64, Path), ("document_id" = i64, Path)),
    responses(
        (status = 200, description = "The image", content(
            (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "application/pdf"))),
        (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(kyc.id = path.kyc_id, document.id = path.document_id))]
async fn document(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<DocumentPath>,
) -> ApiResult<Response> {
    let mut tx = state.db().begin().await?;
    let submission = kyc::submission::get_submitted(&mut tx, SubmissionId::new(path.kyc_id)).await?;
    let document = submission.document(path.document_id).ok_or(kyc::Error::NotFound)?;
    let vault = DocumentVault::new(state.storage().clone(), &state.config().kyc);
    // Decrypted and checked in full first: GCM authenticates only at the end, so nothing is
    // sent that might turn out forged.
    let bytes = vault.read(document).await?;
    let entry = Entry::new("kyc.document-viewed", format!("kyc:{}", submission.id)).after(serde_json::json!({
        "document_id": document.id,
        "kind": document.kind,
        "sha256": document.sha256,
    }));
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    let disposition = format!("inline; filename=\"{}\"", document.file_name(submission.id()));
    let mut response = (StatusCode::OK, Body::from(bytes)).into_response();
    let headers = response.headers_mut();
    let value = |v: &str| HeaderValue::from_str(v).map_err(|e| ApiError::Internal(e.into()));
    headers.insert(header::CONTENT_TYPE, value(&document.content_type)?);
    headers.insert(header::CONTENT_DISPOSITION, value(&disposition)?);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(response)
}

/// What the workflow history names as the cause: the request, so a replay is a no-op.
fn cause(caller: &Caller) -> String {
    caller.meta.request_id.clone().unwrap_or_else(shared::auth::random_token)
}

/// Takes a pending submission for review, so other reviewers leave it alone (claiming one's
/// own again is a no-op).
#[utoipa::path(post, path = "/kyc/submissions/{kyc_id}/claim", tag = "kyc", params(("kyc_id" = i64, Path)),
    responses(
        (status = 200, body = Submission),
        (status = 404, body = Problem),
        (status = 409, description = "Claimed by someone else, or already decided", body = Problem),
))]
#[tracing::instrument(skip_all, fields(kyc.id = path.kyc_id))]
async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<SubmissionPath>,
) -> ApiResult<Json<Submission>> {
    let reviewer = caller.account()?;
    let mut tx = state.db().begin().await?;
    let (from, submission) = kyc::submission::claim(
        &mut tx,
        SubmissionId::new(path.kyc_id),
        reviewer,
        &cause(&caller),
        &caller.principal.actor(),
    )
    .await?;
    if from != submission.state {
        let entry = Entry::new("kyc.claimed", format!("kyc:{}", submission.id))
            .before(serde_json::json!({ "state": from }))
            .after(serde_json::json!({ "state": submission.state, "reviewer_account_id": reviewer.get() }));
        audit::record(&mut tx, &caller, entry).await?;
    }
    tx.commit().await?;
    Ok(Json(submission))
}

/// A decision's reason.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    /// Required to reject (shown to the customer); an optional internal note on approval.
    reason: Option<String>,
}

/// Approves a pending submission, or one the caller claimed.
#[utoipa::path(post, path = "/kyc/submissions/{kyc_id}/approve", tag = "kyc", params(("kyc_id" = i64, Path)),
    request_body = DecisionBody,
    responses(
        (status = 200, body = Submission),
        (status = 404, body = Problem),
        (status = 409, description = "Already decided, or claimed by someone else", body = Problem),
))]
#[tracing::instrument(skip_all, fields(kyc.id = path.kyc_id))]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<SubmissionPath>,
    Json(body): Json<DecisionBody>,
) -> ApiResult<Json<Submission>> {
    decide(&state, &caller, path.kyc_id, Decision::approve(body.reason)?).await
}

/// Rejects a pending submission, or one the caller claimed; the reason is required and shown
/// to the customer, who may then start again.
#[utoipa::path(post, path = "/kyc/submissions/{kyc_id}/reject", tag = "kyc", params(("kyc_id" = i64, Path)),
    request_body = DecisionBody,
    responses(
        (status = 200, body = Submission),
        (status = 404, body = Problem),
        (status = 409, description = "Already decided, or claimed by someone else", body = Problem),
        (status = 422, description = "No reason given", body = Problem),
))]
#[tracing::instrument(skip_all, fields(kyc.id = path.kyc_id))]
async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<SubmissionPath>,
    Json(body): Json<DecisionBody>,
) -> ApiResult<Json<Submission>> {
    decide(&state, &caller, path.kyc_id, Decision::reject(body.reason)?).await
}

async fn decide(state: &AppState, caller: &Caller, id: i64, decision: Decision) -> ApiResult<Json<Submission>> {
    let reviewer = caller.account()?;
    let mut tx = state.db().begin().await?;
    let (from, submission) = kyc::submission::decide(
        &mut tx,
        SubmissionId::new(id),
        Some(reviewer),
        &decision,
        &cause(caller),
        &caller.principal.actor(),
    )
    .await?;
    let action = match decision {
        Decision::Approve { .. } => "kyc.approved",
        Decision::Reject { .. } => "kyc.rejected",
    };
    let entry = Entry::new(action, format!("kyc:{}", submission.id))
        .before(serde_json::json!({ "state": from }))
        .after(serde_json::json!({ "state": submission.state, "reason": submission.decision_reason }));
    audit::record(&mut tx, caller, entry).await?;
    tx.commit().await?;
    Ok(Json(submission))
}
