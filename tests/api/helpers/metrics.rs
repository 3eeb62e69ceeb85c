//! `GET /metrics` read back: the exposition as text or as samples.
use std::collections::BTreeMap;

use super::app::TestApp;

/// The samples of an exposition: `name{labels}` → value.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample line");
            (series.to_owned(), value.parse().expect("sample value"))
        })
        .collect()
}

/// The exposition of the main host, read with the operator token (checks status and
/// content type).
pub async fn scrape_text(app: &TestApp) -> String {
    let res = app
        .client
        .get(app.url("/metrics"))
        .insert_header(("Host", "localhost"))
        .insert_header(("Authorization", format!("Bearer {}", app.admin_token)))
        .send()
        .await
        .expect("scrape sent");
    let mut res = res;
    assert_eq!(res.status().as_u16(), 200);
    let ct = res.headers().get("content-type").unwrap().to_str().unwrap();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let body = res.body().limit(64 * 1024 * 1024).await.expect("body");
    String::from_utf8(body.to_vec()).expect("utf-8")
}

/// The samples of one scrape.
pub async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    samples(&scrape_text(app).await)
}

/// The value of one series, 0 if absent (a counter that never moved).
pub fn at(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}
