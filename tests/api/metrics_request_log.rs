//! Request ids and the one structured log line per request.
use serde_json::Value;

use crate::helpers::*;

async fn get(
    app: &TestApp,
    host: &str,
    path: &str,
    request_id: Option<&str>,
) -> awc::http::header::HeaderMap {
    let mut req = app.client.get(app.url(path)).insert_header(("Host", host));
    if let Some(id) = request_id {
        req = req.insert_header(("X-Request-ID", id));
    }
    req.send().await.expect("request sent").headers().clone()
}

fn echoed(headers: &awc::http::header::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .expect("X-Request-ID in the response")
        .to_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::builder().spawn().await;
    let h = get(&app, "localhost", "/health", Some("build-42.step_3")).await;
    assert_eq!(echoed(&h), "build-42.step_3");
    // Refused by host routing, answered by the default service: still tagged.
    for (host, path) in [("a.b.localhost", "/health"), ("localhost", "/nope")] {
        let h = get(&app, host, path, Some("keep-me")).await;
        assert_eq!(echoed(&h), "keep-me", "{host}{path}");
    }
    let fresh = echoed(&get(&app, "localhost", "/health", None).await);
    let unsafe_id = echoed(&get(&app, "localhost", "/health", Some("two words")).await);
    for id in [&fresh, &unsafe_id] {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(fresh, unsafe_id);
    app.stop().await;
}

#[actix_web::test]
async fn every_request_logs_one_json_line_with_id_tenant_route_status_and_duration() {
    let token = "log-test-operator-token";
    let logging = |format| {
        TestApp::builder()
            .token(token)
            .args(&["--log-format", format])
            .process()
    };
    let server = logging("json");
    let app = server.app();
    let h = get(
        &app,
        "acme.localhost",
        "/licenses/ECU%20Suite/status",
        Some("trace-me-42"),
    )
    .await;
    assert_eq!(echoed(&h), "trace-me-42");
    let line = server.log_line("the request's line", |l| {
        l.contains("trace-me-42") && l.contains(r#""message":"request""#)
    });
    let v: Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(v["message"], "request", "{line}");
    assert_eq!(v["request_id"], "trace-me-42", "{line}");
    assert_eq!(v["tenant"], "acme", "{line}");
    assert_eq!(v["host"], "tenant", "{line}");
    assert_eq!(v["method"], "GET", "{line}");
    assert_eq!(v["route"], "/licenses/{tool}/status", "{line}");
    // No tenant exists: the tenant host answers 404 unknown_tenant.
    assert_eq!(v["status"], 404, "{line}");
    assert!(
        v["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{line}"
    );
    assert!(v["level"] == "INFO", "{line}");

    // Text logs carry the same fields.
    drop(server);
    let server = logging("text");
    let app = server.app();
    get(&app, "localhost", "/health", Some("text-line-7")).await;
    let line = server.wait_for_log(": request request_id=text-line-7");
    for field in ["route=/health", "status=200", "method=GET", "duration_ms="] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
}
