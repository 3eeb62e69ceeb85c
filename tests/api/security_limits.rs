//! Request limits: path, header and body caps, and timeouts for slow clients.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use permetrix_storage::Timestamp;

use crate::helpers::*;

#[actix_web::test]
async fn oversized_paths_and_headers_are_refused_with_json() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;

    let long_path = format!("/licenses/{}/status", "a".repeat(5000));
    let r = app
        .call("GET", &t.host, &long_path, Some(&t.admin_key), None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (414, "uri_too_long"));
    let long_query = format!("/borrows?user={}", "u".repeat(5000));
    let r = app
        .call("GET", &t.host, &long_query, Some(&t.admin_key), None)
        .await;
    assert_eq!(r.status.as_u16(), 414);

    let many: Vec<(String, String)> = (0..80).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let r = send(&app, "GET", &t.host, "/licenses/status", &refs, None).await;
    assert_eq!((r.status.as_u16(), r.code()), (431, "headers_too_large"));
    let big = "b".repeat(20 * 1024);
    let r = send(
        &app,
        "GET",
        "localhost",
        "/health",
        &[("x-big", big.as_str())],
        None,
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (431, "headers_too_large"));
    assert!(r.body["detail"].as_str().unwrap().contains("limits"));

    // Bodies: 413 beyond 64 KiB (also before authentication).
    let r = app
        .call_raw(
            "POST",
            &t.host,
            "/api/auth/login",
            None,
            vec![b'x'; 100_000],
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (413, "payload_too_large"));

    // Ordinary requests pass.
    app.call("GET", &t.host, "/licenses/status", Some(&t.admin_key), None)
        .await
        .expect(200);
    app.stop().await;
}

/// Writes `head` on a raw connection, then reads until the server answers or closes.
fn stall(addr: SocketAddr, head: &'static [u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    // A safety net so a broken server fails the test instead of hanging it.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[actix_web::test]
async fn slow_clients_are_cut_off() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .config(|c| {
            // The body deadline well inside the codec's: with equal timers either could
            // fire first on a busy machine, and only the body deadline answers JSON.
            c.limits.request_timeout = Duration::from_millis(1_500);
            c.limits.body_timeout = Duration::from_millis(300);
        })
        .spawn()
        .await;
    let addr = app.addr;

    // A head that never completes: the codec answers 408 and closes.
    let slow_head = tokio::task::spawn_blocking(move || {
        stall(addr, b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    });
    let reply = slow_head.await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");

    // A body that stops half way: 408 JSON from the body deadline.
    let slow_body = tokio::task::spawn_blocking(move || {
        stall(
            addr,
            b"POST /api/auth/login HTTP/1.1\r\nHost: vendor.localhost\r\nContent-Length: 100\r\n\
              Connection: close\r\n\r\n{\"username\":",
        )
    });
    let reply = slow_body.await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(reply.contains("\"error\":\"request_timeout\""), "{reply:?}");

    // The server is still healthy.
    app.call("GET", "localhost", "/health", None, None)
        .await
        .expect(200);
    app.stop().await;
}
