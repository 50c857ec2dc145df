//! Know-your-customer checks: a customer's identity details and document images, decided by
//! platform staff in the back office's review queue or, later, by a third-party provider.
//!
//! * [`details`]: the identity details, parsed from what the customer sent.
//! * [`documents`]: uploaded images — type checked by their bytes, encrypted with AES-256-GCM
//!   before they reach object storage; only metadata is in the database.
//! * [`submission`]: the `kyc` state machine ([`Kyc`]) and the queries both services use.
//! * [`provider`]: who decides ([`KycProvider`]); [`ManualReview`] is the built-in one.
//!
//! The customer side lives in the redemption service (where customers sign in), the review
//! queue in the back office; both go through this module and talk only through the database.

pub mod details;
pub mod documents;
pub mod provider;
pub mod submission;

pub use details::{Country, Details, DetailsInput, DocumentType};
pub use documents::{Document, DocumentFormat, DocumentId, DocumentKind, DocumentVault};
pub use provider::{Decision, KycProvider, ManualReview, ProviderCallback, ProviderRef};
pub use submission::{Kyc, KycEvent, KycState, QueueItem, Submission, SubmissionId};

use crate::http::{ApiError, FieldError};

/// Why a KYC operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input the customer or reviewer must correct, field by field.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// An upload whose declared `Content-Type` is not one the platform accepts.
    #[error("unsupported document type `{0}`")]
    UnsupportedType(String),
    /// No such submission or document (or not the caller's).
    #[error("no such KYC submission or document")]
    NotFound,
    /// The customer has no draft to change: nothing started yet, or it was already submitted.
    #[error("there is no draft KYC submission")]
    NoDraft,
    /// The customer's submission is awaiting a decision; it cannot be changed meanwhile.
    #[error("a KYC submission is awaiting review")]
    AwaitingReview,
    /// The customer is already verified.
    #[error("already verified")]
    AlreadyApproved,
    /// The action is not allowed in the submission's state (e.g. another decision came first).
    #[error("not allowed while the submission is {state}")]
    WrongState { state: &'static str },
    /// Another reviewer claimed the submission.
    #[error("claimed by another reviewer")]
    ClaimedByOther,
    /// This provider does not take callbacks (the manual review decides in the back office).
    #[error("provider `{0}` does not take callbacks")]
    CallbacksUnsupported(&'static str),
    /// The provider failed or refused the submission.
    #[error("KYC provider failed: {0}")]
    Provider(String),
    /// Object storage failed.
    #[error(transparent)]
    Storage(#[from] object_store::Error),
    /// A stored document failed to decrypt or does not match its recorded hash: tampered with,
    /// or encrypted under another key.
    #[error("document {0} failed its integrity check")]
    Integrity(String),
    /// The state machine refused or failed.
    #[error(transparent)]
    Workflow(crate::workflow::WorkflowError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The blocking pool failed (a bug or resource exhaustion).
    #[error("KYC internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<crate::workflow::WorkflowError> for Error {
    fn from(e: crate::workflow::WorkflowError) -> Self {
        use crate::workflow::WorkflowError as W;
        match e {
            W::NotFound { .. } => Error::NotFound,
            W::InvalidTransition { from, .. } => Error::WrongState { state: from },
            W::Database(e) => Error::Database(e),
            other @ W::UnknownState { .. } => Error::Workflow(other),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let conflict = |code, detail: String| ApiError::Conflict { code, detail };
        match e {
            Error::Invalid(errors) => ApiError::Validation(errors),
            Error::UnsupportedType(_) => ApiError::UnsupportedMediaType(format!(
                "Content-Type must be one of {}",
                DocumentFormat::ALL.map(DocumentFormat::content_type).join(", ")
            )),
            Error::NotFound => ApiError::NotFound("no such KYC submission or document".into()),
            Error::NoDraft => conflict(
                crate::http::ConflictCode::KycNoDraft,
                "save your details first (PUT /customers/me/kyc)".into(),
            ),
            Error::AwaitingReview => conflict(
                crate::http::ConflictCode::KycAwaitingReview,
                "your submission is being reviewed; wait for the decision".into(),
            ),
            Error::AlreadyApproved => {
                conflict(crate::http::ConflictCode::KycApproved, "you are already verified".into())
            }
            Error::WrongState { state } => {
                conflict(crate::http::ConflictCode::KycState, format!("not allowed while the submission is {state}"))
            }
            Error::ClaimedByOther => {
                conflict(crate::http::ConflictCode::KycClaimed, "another reviewer has claimed this submission".into())
            }
            Error::CallbacksUnsupported(provider) => {
                ApiError::NotFound(format!("provider `{provider}` does not take callbacks"))
            }
            Error::Provider(detail) => {
                ApiError::Unavailable { detail: format!("KYC provider: {detail}"), checks: None }
            }
            Error::Storage(e) => {
                // The cause names paths and buckets: logged, not sent.
                tracing::warn!(error = %e, "KYC document storage failed");
                ApiError::Unavailable { detail: "document storage is unavailable".into(), checks: None }
            }
            Error::Database(e) => e.into(),
            e @ (Error::Integrity(_) | Error::Workflow(_) | Error::Internal(_)) => ApiError::Internal(e.into()),
        }
    }
}
