//! KYC across services: a customer submits through the redemption service, a reviewer decides
//! in the back office; they share only the database and the (encrypted) document storage.

use alloy::primitives::Address;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::auth::PlatformRole;
use testkit::{self as testing, TestApp, TestDb};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0 a passport's photo page";

#[tokio::test]
async fn a_customer_submits_kyc_a_reviewer_rejects_it_with_a_reason_and_approves_the_second_try() {
    let db = TestDb::create().await;
    let config = testing::config(&db.url, &testing::required_env("RPC_URL"), &[]);
    let redemption = TestApp::spawn_with(redemption::SERVICE, config.clone()).await;
    let backoffice = TestApp::spawn_with(backoffice::SERVICE, config).await;
    let (_, customer) = redemption.customer(Address::repeat_byte(0x42)).await;
    let (_, reviewer) = backoffice.account("support@brandmint.example", Some(PlatformRole::Support)).await;

    let apply = || async {
        let details = json!({ "legal_name": "Ada Lovelace", "date_of_birth": "1990-12-10", "country": "GB",
                              "document_type": "passport", "document_number": "123456789" });
        let saved = redemption.client.put(redemption.url("/customers/me/kyc")).bearer_auth(&customer).json(&details);
        assert_eq!(saved.send().await.unwrap().status(), StatusCode::CREATED);
        let upload = redemption
            .client
            .put(redemption.url("/customers/me/kyc/documents/front"))
            .bearer_auth(&customer)
            .header("content-type", "image/png")
            .body(PNG);
        assert_eq!(upload.send().await.unwrap().status(), StatusCode::CREATED);
        let submit = redemption.client.post(redemption.url("/customers/me/kyc/submit")).bearer_auth(&customer);
        let submitted: Value = submit.send().await.unwrap().json().await.unwrap();
        assert_eq!(submitted["state"], "pending");
        submitted["id"].as_i64().unwrap()
    };
    let review = |path: String, body: Option<Value>| {
        let request = match body {
            Some(body) => backoffice.client.post(backoffice.url(&path)).json(&body),
            None => backoffice.client.get(backoffice.url(&path)),
        };
        request.bearer_auth(&reviewer).send()
    };

    let first = apply().await;
    let queue: Value = review("/kyc/submissions?status=pending".into(), None).await.unwrap().json().await.unwrap();
    assert_eq!(queue["items"][0]["id"], first);
    let case: Value = review(format!("/kyc/submissions/{first}"), None).await.unwrap().json().await.unwrap();
    let document = case["documents"][0]["id"].as_i64().unwrap();
    let image = review(format!("/kyc/submissions/{first}/documents/{document}"), None).await.unwrap();
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.bytes().await.unwrap(), PNG, "the reviewer sees what the customer uploaded");
    let rejected =
        review(format!("/kyc/submissions/{first}/reject"), Some(json!({ "reason": "The scan is cut off." })));
    assert_eq!(rejected.await.unwrap().status(), StatusCode::OK);

    let status = || redemption.client.get(redemption.url("/customers/me/kyc")).bearer_auth(&customer).send();
    let seen: Value = status().await.unwrap().json().await.unwrap();
    assert_eq!(
        (seen["state"].as_str(), seen["rejection_reason"].as_str()),
        (Some("rejected"), Some("The scan is cut off."))
    );

    let second = apply().await;
    assert_ne!(second, first);
    let approved = review(format!("/kyc/submissions/{second}/approve"), Some(json!({})));
    assert_eq!(approved.await.unwrap().status(), StatusCode::OK);
    let seen: Value = status().await.unwrap().json().await.unwrap();
    assert_eq!((seen["state"].as_str(), &seen["rejection_reason"]), (Some("approved"), &Value::Null));
    let again = redemption.client.put(redemption.url("/customers/me/kyc")).bearer_auth(&customer).json(&json!({
        "legal_name": "Ada Lovelace", "date_of_birth": "1990-12-10", "country": "GB",
        "document_type": "passport", "document_number": "123456789" }));
    let again = again.send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT, "verified customers are done");
}
