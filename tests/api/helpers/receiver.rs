//! A webhook receiver on loopback: records every delivery it gets (with the status it
//! answered), and fails the first ones, or all, as a test asks.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `Permetrix-Signature`, if sent.
    pub signature: Option<String>,
    /// The raw body.
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub answered: u16,
}

impl Delivery {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a delivery is JSON")
    }

    /// Whether the signature is `t=…,v1=<HMAC-SHA256(secret, "t.body")>`, checked the
    /// way a receiver in any language would.
    pub fn signed_with(&self, secret: &str) -> bool {
        let Some(header) = &self.signature else {
            return false;
        };
        let mut t = None;
        let mut v1 = None;
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => t = Some(value),
                Some(("v1", value)) => v1 = Some(value),
                _ => {}
            }
        }
        let (Some(t), Some(v1)) = (t, v1) else {
            return false;
        };
        let mut mac = <Hmac<Sha256>>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        hex::decode(v1).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
    }
}

#[derive(Default)]
struct Behaviour {
    deliveries: Mutex<Vec<Delivery>>,
    /// Requests still to fail before answering 200.
    fail_first: AtomicUsize,
    /// Fail every request while set.
    failing: AtomicBool,
}

/// The receiver; stopped when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    behaviour: Arc<Behaviour>,
    handle: ServerHandle,
}

impl Receiver {
    /// Starts a receiver on a free loopback port that answers 200.
    pub fn start() -> Receiver {
        let behaviour = Arc::new(Behaviour::default());
        let shared = web::Data::from(Arc::clone(&behaviour));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(receive))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.disable_signals().run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Receiver {
            addr,
            behaviour,
            handle,
        }
    }

    /// The URL deliveries go to.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/permetrix", self.addr)
    }

    /// Answers 500 to the next `n` requests.
    pub fn fail_first(&self, n: usize) {
        self.behaviour.fail_first.store(n, Ordering::SeqCst);
    }

    /// Answers 503 to every request while `failing`.
    pub fn set_failing(&self, failing: bool) {
        self.behaviour.failing.store(failing, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.behaviour.deliveries.lock().unwrap().clone()
    }

    /// The requests answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| (200..300).contains(&d.answered))
            .collect()
    }

    /// The events accepted, each once (the first time), in arrival order: what a
    /// receiver that de-duplicates on `id` keeps.
    pub fn events(&self) -> Vec<Value> {
        let mut seen = std::collections::HashSet::new();
        self.accepted()
            .iter()
            .map(Delivery::json)
            .filter(|e| seen.insert(e["id"].as_str().unwrap().to_owned()))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_rt::spawn(async move { handle.stop(false).await });
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, b: web::Data<Behaviour>) -> HttpResponse {
    let failing = b.failing.load(Ordering::SeqCst)
        || b.fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let answered = if failing { 503 } else { 200 };
    b.deliveries.lock().unwrap().push(Delivery {
        signature: req
            .headers()
            .get("Permetrix-Signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
        answered,
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap()).finish()
}
