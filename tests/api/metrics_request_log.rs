//! Request ids and the one structured log line per request.
use std::io::{BufRead, BufReader};
use std::time::Duration;

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
    let app = spawn_app().await;
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
    let dir = tempfile::tempdir().unwrap();
    let token = "log-test-operator-token";
    let server = LoggedServer::start(dir.path(), token, &["--log-format", "json"]);
    let app = TestApp::new(server.addr, token);
    let h = get(
        &app,
        "acme.localhost",
        "/licenses/ECU%20Suite/status",
        Some("trace-me-42"),
    )
    .await;
    assert_eq!(echoed(&h), "trace-me-42");
    let line = server.find(|l| l.contains("trace-me-42") && l.contains(r#""message":"request""#));
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
    let dir = tempfile::tempdir().unwrap();
    let server = LoggedServer::start(dir.path(), token, &["--log-format", "text"]);
    let app = TestApp::new(server.addr, token);
    get(&app, "localhost", "/health", Some("text-line-7")).await;
    let line = server.find(|l| l.contains(": request request_id=text-line-7"));
    for field in ["route=/health", "status=200", "method=GET", "duration_ms="] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
}

/// The server's stderr as it comes, for tests that read log lines.
pub struct LoggedServer {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl LoggedServer {
    /// Starts the binary and waits for its ready line (text or JSON logs).
    pub fn start(dir: &std::path::Path, token: &str, extra: &[&str]) -> LoggedServer {
        let mut child = spawn_serve(dir, token, extra);
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("server became ready");
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                break addr.parse().expect("address in the ready line");
            }
        };
        LoggedServer { child, addr, lines }
    }

    /// The next line satisfying `f` (bounded).
    pub fn find(&self, f: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("expected log line");
            if f(&line) {
                return line;
            }
        }
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
