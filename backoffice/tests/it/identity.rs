//! Brands, members and invitations, API keys and the audit log, through HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::auth::{BrandRole, PlatformRole};
use testkit::{TEST_PASSWORD, TestApp};

#[tokio::test]
async fn an_admin_creates_a_brand_whose_owner_accepts_by_mail_and_invites_a_verifier() {
    let app = TestApp::spawn(backoffice::SERVICE).await;
    let (_, admin) = app.account("admin@brandmint.example", Some(PlatformRole::Admin)).await;
    let (status, brand) = app
        .call(Method::POST, "/brands", &admin, Some(json!({ "name": "Acme", "owner_email": "Owner@Acme.example" })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{brand}");
    let brand_id = brand["id"].as_i64().unwrap();

    // The owner has no account yet: accepting creates it with the chosen password.
    let token = app.mailed_token("owner@acme.example").await;
    let accept = |token: String, password: &str| {
        app.client.post(app.url("/invites/accept")).json(&json!({ "token": token, "password": password })).send()
    };
    let accepted: Value = accept(token.clone(), TEST_PASSWORD).await.unwrap().json().await.unwrap();
    assert_eq!(accepted["role"], "owner");
    assert_eq!(accept(token, TEST_PASSWORD).await.unwrap().status(), StatusCode::NOT_FOUND, "single use");
    let owner = app.sign_in("owner@acme.example").await;

    // A verifier is limited to stores of this brand.
    let (_, store) =
        app.call(Method::POST, &format!("/brands/{brand_id}/stores"), &owner, Some(json!({ "name": "Main St" }))).await;
    let store_id = store["id"].as_i64().unwrap();
    let other_brand = app.brand("Other").await;
    let foreign_store = app.store(other_brand, "Elsewhere").await;
    let invite = |stores: Vec<i64>| json!({ "email": "scan@acme.example", "role": "verifier", "store_ids": stores });
    let invites = format!("/brands/{brand_id}/invites");
    let (status, body) = app.call(Method::POST, &invites, &owner, Some(invite(vec![foreign_store]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app.call(Method::POST, &invites, &owner, Some(invite(vec![]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app.call(Method::POST, &invites, &owner, Some(invite(vec![store_id]))).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = app.mailed_token("scan@acme.example").await;
    assert_eq!(accept(token, TEST_PASSWORD).await.unwrap().status(), StatusCode::OK);

    let (_, members) = app.call(Method::GET, &format!("/brands/{brand_id}/members"), &owner, None).await;
    let roles: Vec<(&str, &str)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("owner@acme.example", "owner"), ("scan@acme.example", "verifier")]);
    let verifier = members[1]["account_id"].as_i64().unwrap();
    assert_eq!(members[1]["store_ids"], json!([store_id]));

    // The last owner can be neither demoted nor removed; a second owner unblocks it.
    let owner_id = members[0]["account_id"].as_i64().unwrap();
    let owner_path = format!("/brands/{brand_id}/members/{owner_id}");
    let (status, body) = app.call(Method::PATCH, &owner_path, &owner, Some(json!({ "role": "manager" }))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("last-owner")));
    let (status, _) = app.call(Method::DELETE, &owner_path, &owner, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let verifier_path = format!("/brands/{brand_id}/members/{verifier}");
    let (status, body) = app.call(Method::PATCH, &verifier_path, &owner, Some(json!({ "role": "owner" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["store_ids"], json!([]));
    let (status, _) = app.call(Method::PATCH, &owner_path, &owner, Some(json!({ "role": "staff" }))).await;
    assert_eq!(status, StatusCode::OK);
    // Demoted, the first owner can no longer manage members, at once.
    let (status, _) = app.call(Method::GET, &invites, &owner, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Each change is in the brand's audit log, with before and after.
    let new_owner = app.sign_in("scan@acme.example").await;
    let (status, audit) = app.call(Method::GET, &format!("/brands/{brand_id}/audit"), &new_owner, None).await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "member.role-changed",
            "member.role-changed",
            "member.joined",
            "member.invited",
            "store.created",
            "member.joined",
            "member.invited",
            "brand.created"
        ]
    );
    assert_eq!(audit[0]["before"]["role"], "owner");
    assert_eq!(audit[0]["after"]["role"], "staff");
    assert_eq!(audit[1]["before"], json!({ "role": "verifier", "store_ids": [store_id] }));
}

#[tokio::test]
async fn api_keys_act_for_their_brand_with_their_permissions_until_revoked() {
    let app = TestApp::spawn(backoffice::SERVICE).await;
    let (acme, other) = (app.brand("Acme").await, app.brand("Other").await);
    let (owner_id, owner) = app.account("owner@acme.example", None).await;
    app.member(acme, owner_id, BrandRole::Owner, &[]).await;
    let (other_owner_id, other_owner) = app.account("owner@other.example", None).await;
    app.member(other, other_owner_id, BrandRole::Owner, &[]).await;

    let keys = format!("/brands/{acme}/api-keys");
    let (status, body) = app
        .call(Method::POST, &keys, &owner, Some(json!({ "name": "shop", "permissions": ["api-keys-manage"] })))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a key cannot mint keys: {body}");
    let (status, created) =
        app.call(Method::POST, &keys, &owner, Some(json!({ "name": "shop", "permissions": ["brand-read"] }))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with(created["key"]["prefix"].as_str().unwrap()));

    let (status, _) = app.call(Method::GET, &format!("/brands/{acme}"), &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.call(Method::GET, &format!("/brands/{acme}/members"), &token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not in the key's permissions");
    let (status, _) = app.call(Method::GET, &format!("/brands/{other}"), &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another brand is invisible");
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let (status, _) = app.call(Method::GET, &format!("/brands/{acme}"), &forged, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The other brand's owner cannot revoke Acme's key, even knowing its id.
    let key_id = created["key"]["id"].as_i64().unwrap();
    let (status, _) = app.call(Method::DELETE, &format!("/brands/{other}/api-keys/{key_id}"), &other_owner, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.call(Method::DELETE, &format!("/brands/{acme}/api-keys/{key_id}"), &other_owner, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.call(Method::GET, &format!("/brands/{acme}"), &token, None).await;
    assert_eq!(status, StatusCode::OK, "still works");

    let (status, _) = app.call(Method::DELETE, &format!("/brands/{acme}/api-keys/{key_id}"), &owner, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.call(Method::GET, &format!("/brands/{acme}"), &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, listed) = app.call(Method::GET, &keys, &owner, None).await;
    assert!(listed[0]["revoked_at"].is_string() && listed[0].get("token").is_none(), "{listed}");
}

#[tokio::test]
async fn altering_any_audit_row_makes_verification_report_that_row() {
    let app = TestApp::spawn(backoffice::SERVICE).await;
    let (_, admin) = app.account("admin@brandmint.example", Some(PlatformRole::Admin)).await;
    for i in 0..4 {
        let body = json!({ "name": format!("Brand {i}"), "owner_email": format!("owner{i}@example.com") });
        assert_eq!(app.call(Method::POST, "/brands", &admin, Some(body)).await.0, StatusCode::CREATED);
    }
    let (status, clean) = app.call(Method::GET, "/audit/verify", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    // One sign-in, then per brand: created + owner invited.
    assert_eq!(clean["rows"], 9, "{clean}");
    assert_eq!(clean["first_broken"], Value::Null);
    let db = app.resources.db();

    // The table refuses changes outright…
    let refused = sqlx::query("UPDATE audit_log SET action = 'x' WHERE id = 3").execute(db).await;
    assert!(refused.unwrap_err().to_string().contains("append-only"));

    // …so an attacker with the owner's rights disables the triggers. Each kind of tampering is
    // found at the row it touched.
    let tamper = |sql: &'static str| async move {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    };
    let verify = || async { app.call(Method::GET, "/audit/verify", &admin, None).await.1 };
    for (sql, row, undo) in [
        (
            "UPDATE audit_log SET after = '\"Evil\"' WHERE id = 6",
            6,
            "UPDATE audit_log SET after = '\"Brand 2\"' WHERE id = 6",
        ),
        (
            "UPDATE audit_log SET at = at - interval '1 day' WHERE id = 4",
            4,
            "UPDATE audit_log SET at = at + interval '1 day' WHERE id = 4",
        ),
        (
            "UPDATE audit_log SET actor = 'account:999' WHERE id = 2",
            2,
            "UPDATE audit_log SET actor = 'account:1' WHERE id = 2",
        ),
    ] {
        tamper(sql).await;
        let report = verify().await;
        assert_eq!(report["first_broken"], row, "{sql}: {report}");
        tamper(undo).await;
        assert_eq!(verify().await["first_broken"], Value::Null, "undone: {sql}");
    }
    // Deleting a row breaks the chain at its successor.
    tamper("DELETE FROM audit_log WHERE id = 5").await;
    let report = verify().await;
    assert_eq!(report["first_broken"], 6, "{report}");
    assert_eq!(report["reason"], "a row is missing before it");
}
