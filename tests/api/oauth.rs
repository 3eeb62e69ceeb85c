//! OAuth 2.0 client credentials for vendors' programs (issue 22, item 16): clients
//! created by the vendor (secret shown once, stored as a digest, revocable),
//! `POST /oauth/token` on the vendor host (form-encoded, HTTP Basic or form
//! credentials, the RFC's errors), short-lived bearer tokens accepted wherever the
//! vendor key is, within their scope; revoking the client ends its tokens at once.
use std::time::Duration;

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

use crate::helpers::*;

const VENDOR_HOST: &str = "vendor.localhost";

/// A client's credentials.
struct Client {
    id: String,
    secret: String,
}

async fn new_client(app: &TestApp, vendor_key: &str, body: Value) -> (Client, Reply) {
    let r = app
        .vendor(vendor_key, "POST", "/api/vendor/oauth-clients", Some(body))
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let client = Client {
        id: r.body["client_id"].as_str().unwrap().to_owned(),
        secret: r.body["client_secret"].as_str().unwrap().to_owned(),
    };
    (client, r)
}

/// `POST /oauth/token` on `host` with a form body, and HTTP Basic credentials if given.
async fn token_request_at(
    app: &TestApp,
    host: &str,
    basic: Option<&Client>,
    content_type: &str,
    form: &str,
) -> Reply {
    let mut req = app
        .client
        .post(app.url("/oauth/token"))
        .insert_header(("Host", host))
        .insert_header(("Content-Type", content_type));
    if let Some(c) = basic {
        let pair = Base64::encode_string(format!("{}:{}", c.id, c.secret).as_bytes());
        req = req.insert_header(("Authorization", format!("Basic {pair}")));
    }
    read(req.send_body(form.to_owned()).await.unwrap()).await
}

async fn token_request(app: &TestApp, basic: Option<&Client>, form: &str) -> Reply {
    token_request_at(
        app,
        VENDOR_HOST,
        basic,
        "application/x-www-form-urlencoded",
        form,
    )
    .await
}

/// An access token for `client` (must answer 200).
async fn access_token(app: &TestApp, client: &Client, scope: Option<&str>) -> String {
    let form = match scope {
        Some(s) => format!(
            "grant_type=client_credentials&scope={}",
            s.replace(' ', "+")
        ),
        None => "grant_type=client_credentials".to_owned(),
    };
    let r = token_request(app, Some(client), &form).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

fn assert_oauth_error(r: &Reply, status: u16, code: &str) {
    assert_eq!((r.status.as_u16(), r.code()), (status, code), "{}", r.body);
    assert!(r.body["error_description"].is_string(), "{}", r.body);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
}

async fn vendor_and_customer(app: &TestApp) -> (String, String) {
    let (vendor_key, _) = create_vendor(app, "vector").await;
    let admin_key = create_customer(app, &vendor_key, "acme").await;
    (vendor_key, admin_key)
}

#[actix_web::test]
async fn a_client_created_by_the_vendor_obtains_a_token_that_provisions_a_package() {
    let app = TestApp::builder().spawn().await;
    let (vendor_key, acme_admin) = vendor_and_customer(&app).await;

    // The vendor creates a client for its CRM; the secret is shown once, not cached.
    let (crm, created) = new_client(
        &app,
        &vendor_key,
        json!({"name": "CRM sync", "scope": "provision customers:read"}),
    )
    .await;
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(created.body["scope"], "customers:read provision");
    assert!(crm.id.starts_with("vector."), "{}", crm.id);
    assert_eq!(crm.secret.len(), 64);
    let listed = app
        .vendor(&vendor_key, "GET", "/api/vendor/oauth-clients", None)
        .await
        .expect(200);
    assert_eq!(listed["clients"][0]["client_id"], crm.id.as_str());
    assert_eq!(listed["clients"][0]["revoked"], false);
    assert!(!listed.to_string().contains(&crm.secret));
    assert!(
        !app.data_contains(crm.secret.as_bytes()),
        "only a digest of the secret is stored"
    );

    // The CRM exchanges its credentials for a short-lived bearer token.
    let r = token_request(&app, Some(&crm), "grant_type=client_credentials").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["scope"], "customers:read provision");
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(r.headers.get("pragma").unwrap(), "no-cache");
    let token = r.body["access_token"].as_str().unwrap().to_owned();

    // The token provisions a package where the vendor key would, and reads customers.
    let package = app
        .vendor(
            &token,
            "POST",
            "/api/vendor/provision",
            Some(json!({
                "tenant_id": "acme",
                "product_id": ECU.id,
                "product_name": ECU.name,
                "total": 20, "commit_qty": 5, "max_overage": 15,
                "overage_price_per_license": 500.0,
            })),
        )
        .await
        .expect(201);
    assert!(package["package_id"].is_string(), "{package}");
    let customers = app
        .vendor(&token, "GET", "/api/vendor/customers", None)
        .await
        .expect(200);
    assert_eq!(customers["customers"][0]["tenant_id"], "acme");
    let me = app
        .vendor(&token, "GET", "/api/auth/me", None)
        .await
        .expect(200);
    assert_eq!(
        (me["kind"].as_str(), me["client_id"].as_str()),
        (Some("oauth_token"), Some(crm.id.as_str()))
    );
    // The customer sees the package.
    let status = app
        .call(
            "GET",
            "acme.localhost",
            "/licenses/status",
            Some(&acme_admin),
            None,
        )
        .await
        .expect(200);
    assert_eq!(status[0]["product_id"], ECU.id);
    assert_eq!(status[0]["total"], 20);

    // Outside its scope: refused, and a token never manages clients.
    for (method, path, body) in [
        (
            "POST",
            "/api/vendor/customers",
            Some(json!({"tenant_id": "globex", "company_name": "Globex"})),
        ),
        ("GET", "/api/vendor/usage", None),
        ("GET", "/api/vendor/oauth-clients", None),
        (
            "POST",
            "/api/vendor/oauth-clients",
            Some(json!({"name": "escalate"})),
        ),
    ] {
        let r = app.vendor(&token, method, path, body).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (403, "insufficient_scope"),
            "{method} {path}: {}",
            r.body
        );
    }
    // Nor is it a credential anywhere but the vendor host.
    let r = app
        .call(
            "GET",
            "acme.localhost",
            "/licenses/status",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    let r = app
        .call("GET", "localhost", "/api/admin/tenants", Some(&token), None)
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
}

#[actix_web::test]
async fn the_token_endpoint_answers_as_rfc_6749_says() {
    let app = TestApp::builder().spawn().await;
    let (vendor_key, _) = vendor_and_customer(&app).await;
    let (reader, _) = new_client(
        &app,
        &vendor_key,
        json!({"name": "reports", "scope": "customers:read usage:read"}),
    )
    .await;

    // Form credentials work as well as Basic; a narrower scope is granted as asked.
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=usage%3Aread",
        reader.id, reader.secret
    );
    let r = token_request(&app, None, &form).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.body["scope"], "usage:read");
    let narrow = r.body["access_token"].as_str().unwrap().to_owned();
    app.vendor(&narrow, "GET", "/api/vendor/usage", None)
        .await
        .expect(200);
    let r = app
        .vendor(&narrow, "GET", "/api/vendor/customers", None)
        .await;
    assert_eq!(r.code(), "insufficient_scope", "{}", r.body);

    let wrong = Client {
        id: reader.id.clone(),
        secret: "0".repeat(64),
    };
    let unknown = Client {
        id: "vector.0123456789abcdef".into(),
        secret: reader.secret.clone(),
    };
    for who in [&wrong, &unknown] {
        let r = token_request(&app, Some(who), "grant_type=client_credentials").await;
        assert_oauth_error(&r, 401, "invalid_client");
        assert_eq!(
            r.headers.get("www-authenticate").unwrap(),
            "Basic realm=\"permetrix\""
        );
    }
    let r = token_request(&app, None, "grant_type=client_credentials").await;
    assert_oauth_error(&r, 401, "invalid_client");

    let r = token_request(&app, Some(&reader), "grant_type=password").await;
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    for scope in ["provision", "admin", "customers%3Aread+provision"] {
        let form = format!("grant_type=client_credentials&scope={scope}");
        let r = token_request(&app, Some(&reader), &form).await;
        assert_oauth_error(&r, 400, "invalid_scope");
    }
    for form in [
        "scope=usage%3Aread",
        "grant_type=client_credentials&grant_type=client_credentials",
        &format!("grant_type=client_credentials&client_id={}", reader.id),
    ] {
        let r = token_request(&app, Some(&reader), form).await;
        assert_oauth_error(&r, 400, "invalid_request");
    }
    let r = token_request_at(
        &app,
        VENDOR_HOST,
        Some(&reader),
        "application/json",
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
    // Only on the vendor host.
    let r = token_request_at(
        &app,
        "localhost",
        Some(&reader),
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);

    // A token altered in any part is no token.
    let token = access_token(&app, &reader, None).await;
    let widened = token.replacen("_9_", "_15_", 1);
    assert_ne!(widened, token);
    let r = app
        .vendor(&widened, "GET", "/api/vendor/customers", None)
        .await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
}

#[actix_web::test]
async fn revoking_the_client_or_deleting_the_vendor_ends_its_tokens_at_once() {
    let app = TestApp::builder().manual_clock(START).spawn().await;
    let (vendor_key, _) = vendor_and_customer(&app).await;
    let (pipeline, _) = new_client(&app, &vendor_key, json!({"name": "pipeline"})).await;
    let (other, _) = new_client(&app, &vendor_key, json!({"name": "other"})).await;
    let token = access_token(&app, &pipeline, None).await;
    let still = access_token(&app, &other, Some("customers:read")).await;
    app.vendor(&token, "GET", "/api/vendor/customers", None)
        .await
        .expect(200);

    let path = format!("/api/vendor/oauth-clients/{}", pipeline.id);
    let r = app
        .vendor(&vendor_key, "DELETE", &path, None)
        .await
        .expect(200);
    assert_eq!(r["status"], "revoked");
    let r = app
        .vendor(&token, "GET", "/api/vendor/customers", None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "unauthorized"));
    let r = token_request(&app, Some(&pipeline), "grant_type=client_credentials").await;
    assert_oauth_error(&r, 401, "invalid_client");
    let listed = app
        .vendor(&vendor_key, "GET", "/api/vendor/oauth-clients", None)
        .await
        .expect(200);
    let revoked: Vec<_> = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["revoked"].as_bool().unwrap()))
        .collect();
    assert!(revoked.contains(&("pipeline", true)), "{listed}");
    assert!(revoked.contains(&("other", false)), "{listed}");
    let r = app
        .vendor(
            &vendor_key,
            "DELETE",
            "/api/vendor/oauth-clients/vector.ffffffffffffffff",
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_client"));

    // The other client's token lives for its hour, and not a second longer.
    app.clock().advance(Duration::from_secs(3599));
    app.vendor(&still, "GET", "/api/vendor/customers", None)
        .await
        .expect(200);
    app.clock().advance(Duration::from_secs(1));
    let r = app
        .vendor(&still, "GET", "/api/vendor/customers", None)
        .await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"));

    // A deleted vendor's clients obtain nothing, and their tokens stop at once.
    let fresh = access_token(&app, &other, None).await;
    app.operator("DELETE", "/api/admin/vendors/vector", None)
        .await
        .expect(200);
    let r = app
        .vendor(&fresh, "GET", "/api/vendor/customers", None)
        .await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
    let r = token_request(&app, Some(&other), "grant_type=client_credentials").await;
    assert_oauth_error(&r, 401, "invalid_client");
}

#[actix_web::test]
async fn client_bodies_are_checked_and_one_vendor_sees_only_its_clients() {
    let app = TestApp::builder().spawn().await;
    let (vendor_key, _) = vendor_and_customer(&app).await;
    for body in [
        json!({"name": "x", "scope": "admin"}),
        json!({"name": "x", "scope": ""}),
        json!({"name": "x", "scopes": "provision"}),
        json!({"scope": "provision"}),
    ] {
        let r = app
            .vendor(
                &vendor_key,
                "POST",
                "/api/vendor/oauth-clients",
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.body);
    }
    let (mine, _) = new_client(&app, &vendor_key, json!({"name": "mine"})).await;
    let (other_key, _) = create_vendor(&app, "globex-soft").await;
    let other_key = other_key.as_str();
    let listed = app
        .vendor(other_key, "GET", "/api/vendor/oauth-clients", None)
        .await
        .expect(200);
    assert_eq!(listed["clients"], json!([]));
    let path = format!("/api/vendor/oauth-clients/{}", mine.id);
    let r = app.vendor(other_key, "DELETE", &path, None).await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    // The other vendor's token sees the other vendor's customers only.
    let (theirs, _) = new_client(&app, other_key, json!({"name": "theirs"})).await;
    let token = access_token(&app, &theirs, None).await;
    let customers = app
        .vendor(&token, "GET", "/api/vendor/customers", None)
        .await
        .expect(200);
    assert_eq!(customers["customers"], json!([]));
}

/// The webhook and offline-key routes take a token with every scope (a client's
/// default), as they take the vendor key; a narrower token is told what it lacks.
#[actix_web::test]
async fn webhook_and_offline_key_routes_take_a_token_with_every_scope() {
    let app = TestApp::builder().spawn().await;
    let (vendor_key, _) = vendor_and_customer(&app).await;
    let (billing, _) = new_client(&app, &vendor_key, json!({"name": "billing"})).await;
    let token = access_token(&app, &billing, None).await;
    let listed = app
        .vendor(&token, "GET", "/api/vendor/webhooks", None)
        .await
        .expect(200);
    assert!(listed.is_object(), "{listed}");
    app.vendor(&token, "GET", "/api/vendor/offline-keys", None)
        .await
        .expect(200);

    let narrow = access_token(&app, &billing, Some("usage:read")).await;
    let r = app
        .vendor(&narrow, "GET", "/api/vendor/webhooks", None)
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "insufficient_scope"),
        "{}",
        r.body
    );
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("lacks 'customers:read customers:write provision'"),
        "{detail}"
    );
}
