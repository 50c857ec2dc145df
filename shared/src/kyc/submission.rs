//! KYC submissions: the `kyc` state machine and the queries of both sides.
//!
//! ```text
//! draft ──submit──▶ pending ──claim──▶ in_review ──approve──▶ approved
//!                      │                   └───────reject───▶ rejected
//!                      └──approve / reject (unclaimed)──────▶ approved / rejected
//! ```
//!
//! Every transition goes through the workflow engine (row lock, conditional update, history in
//! `state_transitions`, a `kyc.<state>` outbox event), so two reviewers deciding at once settle
//! in the database: the second finds the row no longer open and gets [`Error::WrongState`].
//! A transition's business columns are written just before it, under the same row lock.
//!
//! The functions take the caller's connection and must run inside the caller's transaction
//! (they lock rows with `FOR UPDATE`), so the caller's audit entry commits with the change.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use strum::{EnumString, IntoStaticStr, VariantArray};
use utoipa::ToSchema;

use super::{
    Decision, Details, Document, Error, KycProvider, Result, documents,
    provider::{ProviderRef, ProviderSubmission},
};
use crate::{
    auth::AccountId,
    workflow::{Machine, Transition, apply},
};

/// A submission's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubmissionId(i64);

impl SubmissionId {
    pub fn new(id: i64) -> Self {
        Self(id)
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a submission is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumString, IntoStaticStr, VariantArray, Serialize, Deserialize, ToSchema,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum KycState {
    /// The customer is still editing it and uploading documents.
    Draft,
    /// Submitted; waiting in the queue.
    Pending,
    /// Claimed by a reviewer.
    InReview,
    Approved,
    Rejected,
}

impl KycState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What can happen to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum KycEvent {
    Submit,
    Claim,
    Approve,
    Reject,
}

/// The `kyc` machine over `kyc_submissions`. Only forward: nothing leaves a decision.
#[derive(Debug)]
pub struct Kyc;

impl Machine for Kyc {
    const NAME: &'static str = "kyc";
    const TABLE: &'static str = "kyc_submissions";
    type State = KycState;
    type Event = KycEvent;
    const INITIAL: KycState = KycState::Draft;
    const TRANSITIONS: &'static [(KycState, KycEvent, KycState)] = {
        use KycEvent as E;
        use KycState as S;
        &[
            (S::Draft, E::Submit, S::Pending),
            (S::Pending, E::Claim, S::InReview),
            (S::Pending, E::Approve, S::Approved),
            (S::Pending, E::Reject, S::Rejected),
            (S::InReview, E::Approve, S::Approved),
            (S::InReview, E::Reject, S::Rejected),
        ]
    };
}

/// A submission with its details and documents (the reviewer's view; the customer's view is
/// built from it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Submission {
    pub id: i64,
    pub customer_id: i64,
    pub state: KycState,
    pub legal_name: String,
    #[schema(value_type = String, format = Date)]
    pub date_of_birth: NaiveDate,
    pub country: String,
    pub document_type: super::DocumentType,
    pub document_number: String,
    /// Who decides: `manual` (this queue) or a provider's name.
    pub provider: String,
    pub provider_ref: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub reviewer_account_id: Option<i64>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The rejection reason, or a note on an approval.
    pub decision_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub documents: Vec<Document>,
}

impl Submission {
    pub fn id(&self) -> SubmissionId {
        SubmissionId(self.id)
    }

    /// The document with this id, if it belongs to this submission.
    pub fn document(&self, id: i64) -> Option<&Document> {
        self.documents.iter().find(|d| d.id == id)
    }
}

/// One row of the review queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueItem {
    pub id: i64,
    pub customer_id: i64,
    pub state: KycState,
    pub legal_name: String,
    pub country: String,
    pub document_type: super::DocumentType,
    pub submitted_at: Option<DateTime<Utc>>,
    pub reviewer_account_id: Option<i64>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    /// How many document images it has.
    pub documents: i64,
}

fn state(text: &str) -> Result<KycState> {
    text.parse().map_err(|_| Error::Internal(format!("kyc_submissions holds unknown state `{text}`")))
}

fn document_type(text: &str) -> Result<super::DocumentType> {
    text.parse().map_err(|_| Error::Internal(format!("kyc_submissions holds unknown document type `{text}`")))
}

/// The submission with this id, with its documents.
pub async fn get(conn: &mut PgConnection, id: SubmissionId) -> Result<Submission> {
    let row = sqlx::query!(
        "SELECT id, customer_id, state, legal_name, date_of_birth, country, document_type, document_number,
                provider, provider_ref, submitted_at, reviewer_account_id, claimed_at, decided_at,
                decision_reason, created_at, updated_at
         FROM kyc_submissions WHERE id = $1",
        id.get()
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(Submission {
        id: row.id,
        customer_id: row.customer_id,
        state: state(&row.state)?,
        legal_name: row.legal_name,
        date_of_birth: row.date_of_birth,
        country: row.country,
        document_type: document_type(&row.document_type)?,
        document_number: row.document_number,
        provider: row.provider,
        provider_ref: row.provider_ref,
        submitted_at: row.submitted_at,
        reviewer_account_id: row.reviewer_account_id,
        claimed_at: row.claimed_at,
        decided_at: row.decided_at,
        decision_reason: row.decision_reason,
        created_at: row.created_at,
        updated_at: row.updated_at,
        documents: documents::list(conn, id).await?,
    })
}

/// A submission as a reviewer may see it: submitted ones only (drafts are the customer's own).
pub async fn get_submitted(conn: &mut PgConnection, id: SubmissionId) -> Result<Submission> {
    match get(conn, id).await? {
        submission if submission.state == KycState::Draft => Err(Error::NotFound),
        submission => Ok(submission),
    }
}

/// The customer's latest submission, if any.
pub async fn latest_of(conn: &mut PgConnection, customer: i64) -> Result<Option<Submission>> {
    let id =
        sqlx::query_scalar!("SELECT id FROM kyc_submissions WHERE customer_id = $1 ORDER BY id DESC LIMIT 1", customer)
            .fetch_optional(&mut *conn)
            .await?;
    match id {
        Some(id) => Ok(Some(get(conn, SubmissionId(id)).await?)),
        None => Ok(None),
    }
}

/// Locks the customer's open submission; `NoDraft` / `AwaitingReview` / `AlreadyApproved`
/// unless it is a draft.
pub async fn lock_draft(conn: &mut PgConnection, customer: i64) -> Result<SubmissionId> {
    let open = sqlx::query!(
        "SELECT id, state FROM kyc_submissions
         WHERE customer_id = $1 AND state IN ('draft', 'pending', 'in_review') FOR UPDATE",
        customer
    )
    .fetch_optional(&mut *conn)
    .await?;
    match open {
        Some(row) if row.state == KycState::Draft.as_str() => Ok(SubmissionId(row.id)),
        Some(_) => Err(Error::AwaitingReview),
        None if approved(conn, customer).await? => Err(Error::AlreadyApproved),
        None => Err(Error::NoDraft),
    }
}

async fn approved(conn: &mut PgConnection, customer: i64) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM kyc_submissions WHERE customer_id = $1 AND state = 'approved') AS "exists!""#,
        customer
    )
    .fetch_one(conn)
    .await?)
}

/// Saves the customer's details on their draft, starting one if they have none (first time,
/// or after a rejection). Returns the draft and whether it is new.
pub async fn save_draft(conn: &mut PgConnection, customer: i64, details: &Details) -> Result<(Submission, bool)> {
    let (id, created) = match lock_draft(conn, customer).await {
        Ok(id) => {
            sqlx::query!(
                "UPDATE kyc_submissions
                 SET legal_name = $2, date_of_birth = $3, country = $4, document_type = $5, document_number = $6,
                     updated_at = now()
                 WHERE id = $1",
                id.get(),
                details.legal_name(),
                details.date_of_birth(),
                details.country().as_str(),
                details.document_type().as_str(),
                details.document_number(),
            )
            .execute(&mut *conn)
            .await?;
            (id, false)
        }
        Err(Error::NoDraft) => {
            let id = sqlx::query_scalar!(
                "INSERT INTO kyc_submissions (customer_id, legal_name, date_of_birth, country, document_type,
                                              document_number)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                customer,
                details.legal_name(),
                details.date_of_birth(),
                details.country().as_str(),
                details.document_type().as_str(),
                details.document_number(),
            )
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| match e {
                // Another request of the same customer started one at the same moment.
                sqlx::Error::Database(db) if db.constraint() == Some("kyc_submissions_one_open_key") => {
                    Error::WrongState { state: "being started by another request" }
                }
                other => other.into(),
            })?;
            (SubmissionId(id), true)
        }
        Err(e) => return Err(e),
    };
    Ok((get(conn, id).await?, created))
}

/// Submits the customer's draft for a decision: its documents must be complete; the provider
/// is handed the case.
pub async fn submit(
    conn: &mut PgConnection,
    customer: i64,
    provider: &dyn KycProvider,
    cause: &str,
    actor: &str,
) -> Result<Submission> {
    let id = lock_draft(conn, customer).await?;
    let draft = get(conn, id).await?;
    let details = Details::from_row(
        draft.legal_name.clone(),
        draft.date_of_birth,
        &draft.country,
        draft.document_type.as_str(),
        draft.document_number.clone(),
    )?;
    let missing: Vec<&str> = details
        .document_type()
        .required_images()
        .iter()
        .filter(|kind| !draft.documents.iter().any(|d| d.kind == **kind))
        .map(|kind| kind.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(
            "documents",
            format!("a {} needs images of: {}", details.document_type().as_str(), missing.join(", ")),
        ));
    }
    let ProviderRef { provider: name, reference } = provider
        .submit(ProviderSubmission { id, customer_id: customer, details: &details, documents: &draft.documents })
        .await?;
    sqlx::query!(
        "UPDATE kyc_submissions SET submitted_at = now(), provider = $2, provider_ref = $3 WHERE id = $1",
        id.get(),
        name,
        reference,
    )
    .execute(&mut *conn)
    .await?;
    let transition = Transition::<Kyc>::new(id.get(), KycEvent::Submit, cause, actor)
        .with_payload(json!({ "customer_id": customer, "provider": name }));
    apply(conn, transition).await?;
    get(conn, id).await
}

/// Locks a submitted submission; returns its state and reviewer.
async fn lock_submitted(conn: &mut PgConnection, id: SubmissionId) -> Result<(KycState, Option<i64>, i64)> {
    let row = sqlx::query!(
        "SELECT state, reviewer_account_id, customer_id FROM kyc_submissions WHERE id = $1 FOR UPDATE",
        id.get()
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound)?;
    match state(&row.state)? {
        KycState::Draft => Err(Error::NotFound),
        state => Ok((state, row.reviewer_account_id, row.customer_id)),
    }
}

/// The state `event` moves `from` to, or [`Error::WrongState`].
fn next(from: KycState, event: KycEvent) -> Result<KycState> {
    Kyc::transition(from, event).ok_or(Error::WrongState { state: from.as_str() })
}

/// A reviewer takes a pending submission (claiming one's own claim again is a no-op). Returns
/// the state before and the submission after.
pub async fn claim(
    conn: &mut PgConnection,
    id: SubmissionId,
    reviewer: AccountId,
    cause: &str,
    actor: &str,
) -> Result<(KycState, Submission)> {
    let (from, claimed_by, customer) = lock_submitted(conn, id).await?;
    match (from, claimed_by) {
        (KycState::InReview, Some(by)) if by == reviewer.get() => return Ok((from, get(conn, id).await?)),
        (KycState::InReview, _) => return Err(Error::ClaimedByOther),
        _ => next(from, KycEvent::Claim)?,
    };
    sqlx::query!(
        "UPDATE kyc_submissions SET reviewer_account_id = $2, claimed_at = now() WHERE id = $1",
        id.get(),
        reviewer.get()
    )
    .execute(&mut *conn)
    .await?;
    let transition = Transition::<Kyc>::new(id.get(), KycEvent::Claim, cause, actor)
        .with_payload(json!({ "customer_id": customer, "reviewer_account_id": reviewer.get() }));
    apply(conn, transition).await?;
    Ok((from, get(conn, id).await?))
}

/// Approves or rejects a submission. A reviewer may decide a pending one or one they claimed;
/// `reviewer: None` is a provider's decision (its callback). Returns the state before and the
/// submission after; the outbox gets `kyc.approved` / `kyc.rejected`.
pub async fn decide(
    conn: &mut PgConnection,
    id: SubmissionId,
    reviewer: Option<AccountId>,
    decision: &Decision,
    cause: &str,
    actor: &str,
) -> Result<(KycState, Submission)> {
    let (from, claimed_by, customer) = lock_submitted(conn, id).await?;
    if let (Some(me), KycState::InReview) = (reviewer, from)
        && claimed_by != Some(me.get())
    {
        return Err(Error::ClaimedByOther);
    }
    let event = match decision {
        Decision::Approve { .. } => KycEvent::Approve,
        Decision::Reject { .. } => KycEvent::Reject,
    };
    next(from, event)?;
    sqlx::query!(
        "UPDATE kyc_submissions
         SET reviewer_account_id = coalesce($2, reviewer_account_id), decision_reason = $3
         WHERE id = $1",
        id.get(),
        reviewer.map(AccountId::get),
        decision.reason(),
    )
    .execute(&mut *conn)
    .await?;
    let transition = Transition::<Kyc>::new(id.get(), event, cause, actor).with_payload(json!({
        "customer_id": customer,
        "reviewer_account_id": reviewer.map(AccountId::get),
        "reason": decision.reason(),
    }));
    apply(conn, transition).await?;
    sqlx::query!("UPDATE kyc_submissions SET decided_at = now() WHERE id = $1", id.get()).execute(&mut *conn).await?;
    Ok((from, get(conn, id).await?))
}

/// A page of the review queue: submitted submissions (in `state` when given), pending first,
/// then in review, then decided; oldest submission first within each.
pub async fn queue(
    conn: &mut PgConnection,
    state_filter: Option<KycState>,
    limit: i64,
    offset: i64,
) -> Result<Vec<QueueItem>> {
    let rows = sqlx::query!(
        r#"SELECT s.id, s.customer_id, s.state, s.legal_name, s.country, s.document_type, s.submitted_at,
                  s.reviewer_account_id, s.claimed_at, s.decided_at,
                  (SELECT count(*) FROM kyc_documents d WHERE d.submission_id = s.id) AS "documents!"
           FROM kyc_submissions s
           WHERE s.state <> 'draft' AND ($1::text IS NULL OR s.state = $1)
           ORDER BY CASE s.state WHEN 'pending' THEN 0 WHEN 'in_review' THEN 1 ELSE 2 END, s.submitted_at, s.id
           LIMIT $2 OFFSET $3"#,
        state_filter.map(KycState::as_str),
        limit,
        offset,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(QueueItem {
                id: row.id,
                customer_id: row.customer_id,
                state: state(&row.state)?,
                legal_name: row.legal_name,
                country: row.country,
                document_type: document_type(&row.document_type)?,
                submitted_at: row.submitted_at,
                reviewer_account_id: row.reviewer_account_id,
                claimed_at: row.claimed_at,
                decided_at: row.decided_at,
                documents: row.documents,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_final_and_drafts_cannot_be_decided() {
        use KycEvent as E;
        use KycState as S;
        for event in E::VARIANTS {
            assert_eq!(Kyc::transition(S::Approved, *event), None);
            assert_eq!(Kyc::transition(S::Rejected, *event), None);
        }
        assert_eq!(Kyc::transition(S::Draft, E::Approve), None);
        assert_eq!(Kyc::transition(S::InReview, E::Claim), None);
        assert_eq!(Kyc::transition(S::Pending, E::Reject), Some(S::Rejected));
    }
}
