//! A customer's own KYC through HTTP: details, document uploads (checked by their bytes,
//! encrypted at rest), submission, the decision, and starting again after a rejection.

use alloy::primitives::Address;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::{
    auth::PlatformRole,
    kyc::{self, Decision, DocumentVault, SubmissionId},
    storage::Storage,
};
use testkit::TestApp;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0 a 1x1 test image";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0 a test photo of a document's back";

async fn upload(app: &TestApp, token: &str, kind: &str, content_type: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .client
        .put(app.url(&format!("/customers/me/kyc/documents/{kind}")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn details(document_type: &str) -> Value {
    json!({
        "legal_name": "Ada Lovelace",
        "date_of_birth": "1990-12-10",
        "country": "gb",
        "document_type": document_type,
        "document_number": "ab123456",
    })
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .flat_map(|e| if e.path().is_dir() { files(&e.path()) } else { vec![e.path()] })
        .collect()
}

#[tokio::test]
async fn a_customer_submits_kyc_with_encrypted_documents_and_starts_again_after_a_rejection() {
    let app = TestApp::spawn(redemption::SERVICE).await;
    let (customer, token) = app.customer(Address::repeat_byte(1)).await;
    let kyc_path = "/customers/me/kyc";

    let (status, _) = app.call(Method::GET, kyc_path, &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing yet");
    let (status, body) = upload(&app, &token, "front", "image/png", PNG.to_vec()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("kyc-no-draft")), "{body}");

    // Details: every bad field named at once; then a draft.
    let bad = json!({ "legal_name": " ", "date_of_birth": "2999-01-01", "country": "XX", "document_type": "id_card",
                      "document_number": "12;34" });
    let (status, body) = app.call(Method::PUT, kyc_path, &token, Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["legal_name", "date_of_birth", "country", "document_number"]);
    let (status, body) = app.call(Method::PUT, kyc_path, &token, Some(details("selfie_stick"))).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("document_type"))
    );
    let (status, draft) = app.call(Method::PUT, kyc_path, &token, Some(details("id_card"))).await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    assert_eq!(draft["state"], "draft");
    assert_eq!(draft["country"], "GB");
    assert_eq!(draft["missing_documents"], json!(["front", "back"]));
    let (status, _) = app.call(Method::PUT, kyc_path, &token, Some(details("id_card"))).await;
    assert_eq!(status, StatusCode::OK, "the same draft, updated");

    // Uploads are judged by their bytes and their size.
    let (status, body) = upload(&app, &token, "front", "image/png", b"<html>not an image</html>".to_vec()).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("file")));
    assert_eq!(body["type"], "/problems/validation");
    let (status, body) = upload(&app, &token, "front", "image/jpeg", PNG.to_vec()).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("file")));
    let (status, _) = upload(&app, &token, "front", "text/plain", PNG.to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut huge = PNG.to_vec();
    huge.resize(10 * 1024 * 1024 + 1, 0);
    let (status, body) = upload(&app, &token, "front", "image/png", huge).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("file")));
    let (status, _) = upload(&app, &token, "passport", "image/png", PNG.to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no such kind");

    let (status, front) = upload(&app, &token, "front", "image/png", PNG.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{front}");
    assert_eq!(front["content_type"], "image/png");
    assert_eq!(front["size_bytes"], PNG.len());
    let (status, body) = app.call(Method::POST, "/customers/me/kyc/submit", &token, None).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("documents")));
    // A second front replaces the first (and its object).
    let (status, front) = upload(&app, &token, "front", "image/png", PNG.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = upload(&app, &token, "back", "image/jpeg", JPEG.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);

    // At rest: two objects, neither holding the plaintext, both decrypting to it.
    let config = app.resources.config();
    let stored = files(&config.storage.dir);
    assert_eq!(stored.len(), 2, "{stored:?}");
    for path in &stored {
        let raw = std::fs::read(path).unwrap();
        assert!(!raw.windows(8).any(|w| w == &PNG[..8] || w == &JPEG[..8]), "{} holds plaintext", path.display());
        assert!(path.starts_with(config.storage.dir.join(format!("kyc/{customer}"))));
    }
    let vault = DocumentVault::new(Storage::new(&config.storage).unwrap(), &config.kyc);
    let key: String = sqlx::query_scalar("SELECT storage_key FROM kyc_documents WHERE id = $1")
        .bind(front["id"].as_i64().unwrap())
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    assert_eq!(vault.get(&key).await.unwrap().unwrap(), PNG);

    let (status, submitted) = app.call(Method::POST, "/customers/me/kyc/submit", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    assert_eq!(submitted["state"], "pending");
    assert_eq!(submitted["documents"].as_array().unwrap().len(), 2);
    let id = submitted["id"].as_i64().unwrap();

    // Frozen while awaiting review.
    let (status, body) = app.call(Method::PUT, kyc_path, &token, Some(details("passport"))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("kyc-awaiting-review")));
    let (status, _) = upload(&app, &token, "selfie", "image/png", PNG.to_vec()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app.call(Method::POST, "/customers/me/kyc/submit", &token, None).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Others see nothing of it; staff are not customers.
    let (_, other) = app.customer(Address::repeat_byte(2)).await;
    assert_eq!(app.call(Method::GET, kyc_path, &other, None).await.0, StatusCode::NOT_FOUND);
    let (reviewer, staff) = app.account("support@brandmint.example", Some(PlatformRole::Support)).await;
    assert_eq!(app.call(Method::GET, kyc_path, &staff, None).await.0, StatusCode::FORBIDDEN);

    // The back office rejects it (its queue is tested there); the customer sees why.
    let mut tx = app.resources.db().begin().await.unwrap();
    let reason = Decision::reject(Some("The photo of the back is blurry.".into())).unwrap();
    let reviewer = shared::auth::AccountId::new(reviewer);
    kyc::submission::decide(&mut tx, SubmissionId::new(id), Some(reviewer), &reason, "test", "account:test")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (status, seen) = app.call(Method::GET, kyc_path, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["state"], "rejected");
    assert_eq!(seen["rejection_reason"], "The photo of the back is blurry.");

    // And starts again: a new draft, the rejected one kept as history.
    let (status, again) = app.call(Method::PUT, kyc_path, &token, Some(details("passport"))).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_ne!(again["id"], id);
    assert_eq!(again["missing_documents"], json!(["front"]));
    assert_eq!(again["rejection_reason"], Value::Null);

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE actor = $1 AND action LIKE 'kyc.%' ORDER BY id")
            .bind(format!("customer:{customer}"))
            .fetch_all(app.resources.db())
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            "kyc.details-saved",
            "kyc.details-saved",
            "kyc.document-uploaded",
            "kyc.document-uploaded",
            "kyc.document-uploaded",
            "kyc.submitted",
            "kyc.details-saved"
        ]
    );
    let events: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM outbox_events WHERE aggregate_type = 'kyc' ORDER BY id")
            .fetch_all(app.resources.db())
            .await
            .unwrap();
    assert_eq!(events, ["kyc.pending", "kyc.rejected"]);
}
