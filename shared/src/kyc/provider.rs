//! Who decides a KYC submission.
//!
//! [`ManualReview`] (the default) leaves it to platform staff in the back office's review
//! queue. A third-party service plugs in by implementing [`KycProvider`]:
//!
//! 1. `submit` hands it the submission when the customer submits (it runs inside the
//!    submitting transaction, so a refusal leaves the submission a draft the customer can
//!    retry; a slow provider should instead be called from an outbox subscriber of
//!    `kyc.pending`, with the event id as its idempotency key). The [`ProviderRef`] it returns
//!    is stored as `kyc_submissions.provider_ref`.
//! 2. Its webhook route (added with `auth::public` in the service that receives it) passes the
//!    raw request to `parse_callback`, which verifies the provider's signature and reads the
//!    verdict; the route then calls [`super::submission::decide`] with no reviewer account,
//!    which audits nothing by itself: record the callback with `audit::record_as` as
//!    `kyc-provider:<name>`.
//! 3. [`configured`] picks it (from a new configuration variable naming the provider, with its
//!    API credentials in [`crate::config::KycConfig`]).
//!
//! Documents reach the provider decrypted through [`super::DocumentVault::read`].

use std::sync::Arc;

use axum::http::HeaderMap;

use super::{Details, Document, Error, Result, SubmissionId};
use crate::workflow::BoxFuture;

/// What a provider is given when a customer submits.
#[derive(Debug, Clone, Copy)]
pub struct ProviderSubmission<'a> {
    pub id: SubmissionId,
    pub customer_id: i64,
    pub details: &'a Details,
    pub documents: &'a [Document],
}

/// How a provider names a submission on its side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRef {
    /// The provider's name, stored with the submission.
    pub provider: &'static str,
    /// Its reference for the case (`None` for the manual review, where our id is the reference).
    pub reference: Option<String>,
}

/// A verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Verified; an optional note for the record.
    Approve { note: Option<String> },
    /// Not verified; the reason is shown to the customer.
    Reject { reason: String },
}

impl Decision {
    /// An approval with an optional note (blank counts as none).
    pub fn approve(note: Option<String>) -> Result<Self> {
        Ok(Decision::Approve { note: reason_text(note, false)? })
    }

    /// A rejection: the reason is required.
    pub fn reject(reason: Option<String>) -> Result<Self> {
        let reason = reason_text(reason, true)?.ok_or_else(|| Error::invalid("reason", "is required to reject"))?;
        Ok(Decision::Reject { reason })
    }

    /// The note or reason.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Approve { note } => note.as_deref(),
            Decision::Reject { reason } => Some(reason),
        }
    }
}

fn reason_text(text: Option<String>, required: bool) -> Result<Option<String>> {
    let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    match text {
        None if required => Err(Error::invalid("reason", "is required to reject")),
        Some(t) if t.chars().count() > 1000 => Err(Error::invalid("reason", "must be at most 1000 characters")),
        Some(t) if t.chars().any(|c| c.is_control() && c != '\n') => {
            Err(Error::invalid("reason", "must not contain control characters"))
        }
        other => Ok(other),
    }
}

/// A provider's callback, once verified and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCallback {
    /// The [`ProviderRef::reference`] it is about.
    pub reference: String,
    pub decision: Decision,
}

/// A KYC service.
pub trait KycProvider: Send + Sync + std::fmt::Debug + 'static {
    /// Stable name, stored with each submission it handles.
    fn name(&self) -> &'static str;

    /// Takes a submitted case; returns how the provider names it.
    fn submit<'a>(&'a self, submission: ProviderSubmission<'a>) -> BoxFuture<'a, Result<ProviderRef>>;

    /// Verifies and reads a callback (a webhook) from the provider.
    fn parse_callback(&self, headers: &HeaderMap, body: &[u8]) -> Result<ProviderCallback>;
}

/// Platform staff decide in the back office's review queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManualReview;

impl KycProvider for ManualReview {
    fn name(&self) -> &'static str {
        "manual"
    }

    fn submit<'a>(&'a self, _: ProviderSubmission<'a>) -> BoxFuture<'a, Result<ProviderRef>> {
        // The submission is in the queue by being `pending`; nothing to send anywhere.
        Box::pin(async { Ok(ProviderRef { provider: self.name(), reference: None }) })
    }

    fn parse_callback(&self, _: &HeaderMap, _: &[u8]) -> Result<ProviderCallback> {
        Err(Error::CallbacksUnsupported(self.name()))
    }
}

/// The provider the platform uses: the manual review until a third-party one is configured.
pub fn configured() -> Arc<dyn KycProvider> {
    Arc::new(ManualReview)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_needs_a_reason_and_an_approval_does_not() {
        assert!(matches!(Decision::reject(None), Err(Error::Invalid(e)) if e[0].field == "reason"));
        assert!(matches!(Decision::reject(Some("  ".into())), Err(Error::Invalid(_))));
        assert_eq!(Decision::reject(Some(" blurry ".into())).unwrap().reason(), Some("blurry"));
        assert_eq!(Decision::approve(Some(" ".into())).unwrap(), Decision::Approve { note: None });
        assert!(matches!(Decision::reject(Some("x".repeat(1001))), Err(Error::Invalid(_))));
    }

    #[test]
    fn the_manual_review_takes_no_callbacks() {
        assert!(matches!(
            ManualReview.parse_callback(&HeaderMap::new(), b"{}"),
            Err(Error::CallbacksUnsupported("manual"))
        ));
    }
}
