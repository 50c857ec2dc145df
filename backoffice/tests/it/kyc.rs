//! The KYC review queue through HTTP: listing, reading (decrypted documents), claiming,
//! deciding — who may, what is refused, what is audited. Customers' submissions are made
//! through `shared::kyc` (the customer side is the redemption service's, tested there).

use alloy::primitives::Address;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::{
    auth::{BrandRole, PlatformRole},
    kyc::{
        self, Details, DetailsInput, DocumentFormat, DocumentKind, DocumentType, DocumentVault, ManualReview,
        documents::{self, NewDocument},
    },
    storage::Storage,
};
use testkit::TestApp;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0 the front of a passport";

fn vault(app: &TestApp) -> DocumentVault {
    let config = app.resources.config();
    DocumentVault::new(Storage::new(&config.storage).unwrap(), &config.kyc)
}

/// A customer (wallet `0xnn…`) with a draft holding a passport's front page; returns the
/// customer's id and token and the submission's id.
async fn draft(app: &TestApp, wallet: u8, name: &str) -> (i64, String, i64) {
    let (customer, token) = app.customer(Address::repeat_byte(wallet)).await;
    let details = Details::try_from(DetailsInput {
        legal_name: name.into(),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1985, 3, 1).unwrap(),
        country: "DE".into(),
        document_type: DocumentType::Passport,
        document_number: "C01X00T47".into(),
    })
    .unwrap();
    let mut tx = app.resources.db().begin().await.unwrap();
    let (draft, _) = kyc::submission::save_draft(&mut tx, customer, &details).await.unwrap();
    let key = documents::storage_key(customer, draft.id());
    vault(app).put(&key, PNG.into()).await.unwrap();
    let new = NewDocument {
        submission: draft.id(),
        kind: DocumentKind::Front,
        format: DocumentFormat::Png,
        bytes: PNG,
        storage_key: &key,
    };
    documents::record(&mut tx, new).await.unwrap();
    tx.commit().await.unwrap();
    (customer, token, draft.id)
}

/// As [`draft`], then submitted.
async fn submitted(app: &TestApp, wallet: u8, name: &str) -> i64 {
    let (customer, _, id) = draft(app, wallet, name).await;
    let mut tx = app.resources.db().begin().await.unwrap();
    kyc::submission::submit(&mut tx, customer, &ManualReview, &format!("submit-{id}"), "customer:test").await.unwrap();
    tx.commit().await.unwrap();
    id
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"].as_array().unwrap().iter().map(|item| item["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn reviewers_work_the_queue_and_every_look_and_decision_is_audited() {
    let app = TestApp::spawn(backoffice::SERVICE).await;
    let (support_id, support) = app.account("support@brandmint.example", Some(PlatformRole::Support)).await;
    let (_, admin) = app.account("admin@brandmint.example", Some(PlatformRole::Admin)).await;
    let first = submitted(&app, 1, "Ada Lovelace").await;
    let second = submitted(&app, 2, "Grace Hopper").await;
    let third = submitted(&app, 3, "Katherine Johnson").await;
    let (_, _, a_draft) = draft(&app, 4, "Still Typing").await;

    // The queue: submitted only, oldest first; filters and bounds checked.
    let (status, page) = app.call(Method::GET, "/kyc/submissions", &support, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), [first, second, third]);
    assert_eq!(page["items"][0]["state"], "pending");
    assert_eq!(page["items"][0]["documents"], 1);
    let (_, page) = app.call(Method::GET, "/kyc/submissions?limit=2", &support, None).await;
    assert_eq!((ids(&page), page["next_offset"].as_i64()), (vec![first, second], Some(2)));
    let (_, page) = app.call(Method::GET, "/kyc/submissions?limit=2&offset=2", &support, None).await;
    assert_eq!(ids(&page), [third]);
    let (status, body) = app.call(Method::GET, "/kyc/submissions?status=draft&limit=0", &support, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["status", "limit"]);
    let (status, _) = app.call(Method::GET, &format!("/kyc/submissions/{a_draft}"), &support, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "drafts are the customer's own");

    // Reading a case and its image, decrypted; the object at rest is not the image.
    let (status, case) = app.call(Method::GET, &format!("/kyc/submissions/{first}"), &support, None).await;
    assert_eq!(status, StatusCode::OK, "{case}");
    assert_eq!(
        (case["legal_name"].as_str(), case["document_number"].as_str()),
        (Some("Ada Lovelace"), Some("C01X00T47"))
    );
    let document = case["documents"][0]["id"].as_i64().unwrap();
    let image = app
        .client
        .get(app.url(&format!("/kyc/submissions/{first}/documents/{document}")))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.headers()["cache-control"], "no-store");
    assert_eq!(image.headers()["x-content-type-options"], "nosniff");
    assert_eq!(image.bytes().await.unwrap(), PNG);
    let key: String = sqlx::query_scalar("SELECT storage_key FROM kyc_documents WHERE id = $1")
        .bind(document)
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    let raw = vault(&app).raw(&key).await.unwrap().unwrap();
    assert!(!raw.windows(16).any(|w| w == &PNG[..16]), "stored encrypted");
    let (status, _) =
        app.call(Method::GET, &format!("/kyc/submissions/{second}/documents/{document}"), &support, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another submission's document");

    // Claim, then decide: only the claimant, only once.
    let (status, claimed) = app.call(Method::POST, &format!("/kyc/submissions/{first}/claim"), &support, None).await;
    assert_eq!((status, claimed["state"].as_str()), (StatusCode::OK, Some("in_review")), "{claimed}");
    assert_eq!(claimed["reviewer_account_id"], support_id);
    let (status, _) = app.call(Method::POST, &format!("/kyc/submissions/{first}/claim"), &support, None).await;
    assert_eq!(status, StatusCode::OK, "claiming one's own claim again is a no-op");
    let approve = |id: i64| format!("/kyc/submissions/{id}/approve");
    let reject = |id: i64| format!("/kyc/submissions/{id}/reject");
    let (status, body) = app.call(Method::POST, &approve(first), &admin, Some(json!({}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("kyc-claimed")));
    let (status, body) = app.call(Method::POST, &format!("/kyc/submissions/{first}/claim"), &admin, None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("kyc-claimed")));
    let (status, approved) =
        app.call(Method::POST, &approve(first), &support, Some(json!({ "reason": "matches the photo" }))).await;
    assert_eq!((status, approved["state"].as_str()), (StatusCode::OK, Some("approved")), "{approved}");
    assert!(approved["decided_at"].is_string());
    for path in [approve(first), reject(first)] {
        let (status, body) = app.call(Method::POST, &path, &support, Some(json!({ "reason": "again" }))).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("kyc-state")), "{path}");
    }

    // A rejection needs a reason; an unclaimed pending case can be decided directly.
    for body in [json!({}), json!({ "reason": "   " })] {
        let (status, problem) = app.call(Method::POST, &reject(second), &admin, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], "reason");
    }
    let (status, body) = app.call(Method::POST, &reject(second), &admin, Some(json!({ "reason": "expired" }))).await;
    assert_eq!((status, body["decision_reason"].as_str()), (StatusCode::OK, Some("expired")));
    let (status, _) = app.call(Method::POST, &reject(999_999), &admin, Some(json!({ "reason": "x" }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Open cases first, then the decided ones; filters by state.
    let (_, page) = app.call(Method::GET, "/kyc/submissions", &support, None).await;
    assert_eq!(ids(&page), [third, first, second]);
    let (_, page) = app.call(Method::GET, "/kyc/submissions?status=rejected", &support, None).await;
    assert_eq!(ids(&page), [second]);

    // Audited: every look at a case or image and every decision, with before and after.
    type Row = (String, String, String, Option<Value>, Option<Value>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT actor, action, target, before, after FROM audit_log WHERE action LIKE 'kyc.%' ORDER BY id",
    )
    .fetch_all(app.resources.db())
    .await
    .unwrap();
    let actions: Vec<(&str, &str)> = rows.iter().map(|r| (r.1.as_str(), r.2.as_str())).collect();
    let (kyc_first, kyc_second) = (format!("kyc:{first}"), format!("kyc:{second}"));
    assert_eq!(
        actions,
        [
            ("kyc.viewed", kyc_first.as_str()),
            ("kyc.document-viewed", kyc_first.as_str()),
            ("kyc.claimed", kyc_first.as_str()),
            ("kyc.approved", kyc_first.as_str()),
            ("kyc.rejected", kyc_second.as_str()),
        ]
    );
    assert_eq!(rows[0].0, format!("account:{support_id}"));
    assert_eq!(rows[1].4.as_ref().unwrap()["document_id"], document);
    assert_eq!(rows[3].3, Some(json!({ "state": "in_review" })));
    assert_eq!(rows[4].4.as_ref().unwrap()["reason"], "expired");
    let verification = app.call(Method::GET, "/audit/verify", &admin, None).await.1;
    assert_eq!(verification["first_broken"], Value::Null);

    // Decisions reach the outbox for whoever reacts (mail the customer, unlock payouts).
    let events: Vec<(String, i64, Value)> = sqlx::query_as(
        "SELECT event_type, aggregate_id, payload FROM outbox_events
         WHERE event_type IN ('kyc.approved', 'kyc.rejected') ORDER BY id",
    )
    .fetch_all(app.resources.db())
    .await
    .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].0.as_str(), events[0].1), ("kyc.approved", first));
    assert_eq!(
        (events[1].0.as_str(), events[1].1, &events[1].2["reason"]),
        ("kyc.rejected", second, &json!("expired"))
    );
}

#[tokio::test]
async fn concurrent_decisions_settle_in_the_database_and_the_loser_gets_409() {
    let app = TestApp::spawn(backoffice::SERVICE).await;
    let (_, support) = app.account("support@brandmint.example", Some(PlatformRole::Support)).await;
    let (_, admin) = app.account("admin@brandmint.example", Some(PlatformRole::Admin)).await;
    for wallet in 1..=5 {
        let id = submitted(&app, wallet, "Race Condition").await;
        let (approve, reject) = (format!("/kyc/submissions/{id}/approve"), format!("/kyc/submissions/{id}/reject"));
        let (a, b) = tokio::join!(
            app.call(Method::POST, &approve, &support, Some(json!({}))),
            app.call(Method::POST, &reject, &admin, Some(json!({ "reason": "no" }))),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{a:?} {b:?}");
        let decisions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox_events WHERE aggregate_type = 'kyc' AND aggregate_id = $1
             AND event_type IN ('kyc.approved', 'kyc.rejected')",
        )
        .bind(id)
        .fetch_one(app.resources.db())
        .await
        .unwrap();
        assert_eq!(decisions, 1);
    }
}

#[tokio::test]
async fn brand_staff_developers_and_customers_cannot_reach_the_queue() {
    let app = TestApp::spawn(backoffice::SERVICE).await;
    let id = submitted(&app, 1, "Ada Lovelace").await;
    let brand = app.brand("Acme").await;
    let (owner_id, owner) = app.account("owner@acme.example", None).await;
    app.member(brand, owner_id, BrandRole::Owner, &[]).await;
    let (_, developer) = app.account("dev@brandmint.example", Some(PlatformRole::Developer)).await;
    let (_, customer) = app.customer(Address::repeat_byte(9)).await;
    let document: i64 = sqlx::query_scalar("SELECT id FROM kyc_documents WHERE submission_id = $1")
        .bind(id)
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    let routes = [
        (Method::GET, "/kyc/submissions".to_owned()),
        (Method::GET, format!("/kyc/submissions/{id}")),
        (Method::GET, format!("/kyc/submissions/{id}/documents/{document}")),
        (Method::POST, format!("/kyc/submissions/{id}/claim")),
        (Method::POST, format!("/kyc/submissions/{id}/approve")),
        (Method::POST, format!("/kyc/submissions/{id}/reject")),
    ];
    for (method, path) in &routes {
        for token in [&owner, &developer, &customer] {
            let (status, body) = app.call(method.clone(), path, token, Some(json!({ "reason": "x" }))).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        }
        let anonymous = app.client.request(method.clone(), app.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let state: String = sqlx::query_scalar("SELECT state FROM kyc_submissions WHERE id = $1")
        .bind(id)
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    assert_eq!(state, "pending", "untouched");
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'kyc.%'")
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    assert_eq!(audited, 0, "nothing was seen");
}

#[tokio::test]
async fn a_tampered_document_is_refused_without_leaking_and_one_open_submission_is_enforced() {
    let app = TestApp::spawn(backoffice::SERVICE).await;
    let (_, support) = app.account("support@brandmint.example", Some(PlatformRole::Support)).await;
    let id = submitted(&app, 1, "Ada Lovelace").await;
    let (document, key, customer): (i64, String, i64) = sqlx::query_as(
        "SELECT d.id, d.storage_key, s.customer_id FROM kyc_documents d
         JOIN kyc_submissions s ON s.id = d.submission_id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_one(app.resources.db())
    .await
    .unwrap();

    // Flip one byte of the stored object: the tag no longer verifies; nothing is sent or audited.
    let mut raw = vault(&app).raw(&key).await.unwrap().unwrap().to_vec();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    Storage::new(&app.resources.config().storage).unwrap().put(&key, raw.into()).await.unwrap();
    let (status, body) =
        app.call(Method::GET, &format!("/kyc/submissions/{id}/documents/{document}"), &support, None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "internal");
    let viewed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'kyc.document-viewed'")
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    assert_eq!(viewed, 0);

    // The database itself refuses a second open submission for the customer.
    let second = sqlx::query(
        "INSERT INTO kyc_submissions (customer_id, legal_name, date_of_birth, country, document_type, document_number)
         VALUES ($1, 'Ada Lovelace', '1985-03-01', 'DE', 'passport', 'X1')",
    )
    .bind(customer)
    .execute(app.resources.db())
    .await
    .unwrap_err();
    let constraint = second.as_database_error().and_then(|e| e.constraint().map(str::to_owned));
    assert_eq!(constraint.as_deref(), Some("kyc_submissions_one_open_key"));
    // And a decision without a reviewer, or a rejection without a reason, cannot be written.
    let bad = sqlx::query("UPDATE kyc_submissions SET state = 'rejected', reviewer_account_id = NULL WHERE id = $1")
        .bind(id)
        .execute(app.resources.db())
        .await;
    assert!(bad.is_err());
}
