//! A proxy that routes as Fly's does, for brokers on loopback: each request goes to one
//! machine (round robin, or the one named by `fly-force-instance-id`), and an answer
//! carrying `fly-replay: instance=<machine id>` is not passed on: the same request is
//! replayed once at that machine, marked with `fly-replay-src`, and that answer goes
//! back. At most one replay per request, as on Fly; a machine that refuses connections
//! is skipped in the rotation (Fly's health checks), one that does not answer in time
//! gets the client a 504.
//!
//! Self-contained (actix-web and awc only), so that `examples/fly_proxy.rs` builds the
//! same proxy for the cluster benchmark (`benches/cluster.sh`).
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};

/// The request header that sends a request to one machine (Fly's name for it).
pub const FORCE_INSTANCE: &str = "fly-force-instance-id";
/// The answer header that asks the proxy to replay the request elsewhere.
pub const REPLAY: &str = "fly-replay";
/// The request header that marks a replayed request.
pub const REPLAY_SOURCE: &str = "fly-replay-src";

/// Headers of one hop, not passed on.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::CONTENT_LENGTH,
    header::PROXY_AUTHORIZATION,
];

/// What the proxy did so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProxyCounts {
    /// Requests from clients.
    pub requests: u64,
    /// Answers with `fly-replay` that were replayed.
    pub replays: u64,
    /// Answers that asked for a second replay (passed on without it).
    pub second_replays: u64,
    /// Connections a machine refused.
    pub refused: u64,
    /// Requests a machine did not answer in time (the client got a 504).
    pub timeouts: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    replays: AtomicU64,
    second_replays: AtomicU64,
    refused: AtomicU64,
    timeouts: AtomicU64,
}

/// The machines behind the proxy and its counters, shared by its workers.
struct Machines {
    list: RwLock<Vec<(String, SocketAddr)>>,
    next: AtomicUsize,
    timeout: Duration,
    counters: Counters,
}

impl Machines {
    fn address(&self, id: &str) -> Option<SocketAddr> {
        let list = self.list.read().unwrap_or_else(|p| p.into_inner());
        list.iter().find(|(m, _)| m == id).map(|(_, addr)| *addr)
    }

    /// Every machine, starting with the next one in the rotation.
    fn rotation(&self) -> Vec<(String, SocketAddr)> {
        let list = self.list.read().unwrap_or_else(|p| p.into_inner()).clone();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = list.len().max(1);
        (0..list.len())
            .map(|i| list[(start + i) % n].clone())
            .collect()
    }
}

/// A running proxy. Stopped when dropped.
pub struct FlyProxy {
    pub addr: SocketAddr,
    machines: Arc<Machines>,
    handle: ServerHandle,
}

impl FlyProxy {
    /// Starts the proxy on `listen` (port 0: a free one) in front of `machines` (id,
    /// address), on the current actix runtime. A machine that does not answer within
    /// `timeout` gets the client a 504.
    pub fn start(
        listen: SocketAddr,
        machines: &[(String, SocketAddr)],
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let machines = Arc::new(Machines {
            list: RwLock::new(machines.to_vec()),
            next: AtomicUsize::new(0),
            timeout,
            counters: Counters::default(),
        });
        let shared = Arc::clone(&machines);
        let server = HttpServer::new(move || {
            let client = awc::Client::builder()
                .timeout(shared.timeout)
                .disable_redirects()
                .finish();
            App::new()
                .app_data(web::Data::from(Arc::clone(&shared)))
                .app_data(web::Data::new(client))
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(route))
        })
        .workers(1)
        .bind(listen)?;
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Ok(FlyProxy {
            addr,
            machines,
            handle,
        })
    }

    /// Machine `id` is (now) at `addr`: a restarted machine keeps its id.
    pub fn set(&self, id: &str, addr: SocketAddr) {
        let mut list = self
            .machines
            .list
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match list.iter_mut().find(|(m, _)| m == id) {
            Some(entry) => entry.1 = addr,
            None => list.push((id.to_owned(), addr)),
        }
    }

    /// What the proxy did so far.
    pub fn counts(&self) -> ProxyCounts {
        let c = &self.machines.counters;
        ProxyCounts {
            requests: c.requests.load(Ordering::Relaxed),
            replays: c.replays.load(Ordering::Relaxed),
            second_replays: c.second_replays.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FlyProxy {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// A machine's answer, read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Why a machine gave no answer.
enum Failure {
    /// It refused the connection (or there is no such machine): nothing was sent.
    Refused(String),
    /// It did not answer in time, or the connection broke: the request may have been
    /// served.
    Lost(String),
}

/// Sends the client's request to `addr`; a replay carries `source` in `fly-replay-src`.
async fn send(
    client: &awc::Client,
    addr: SocketAddr,
    req: &HttpRequest,
    body: &Bytes,
    source: Option<&str>,
) -> Result<Answer, Failure> {
    let url = format!("http://{addr}{}", req.uri());
    let mut out = client.request(req.method().clone(), url);
    for (name, value) in req.headers() {
        if !HOP_BY_HOP.contains(name) && name != FORCE_INSTANCE {
            out = out.append_header((name.clone(), value.clone()));
        }
    }
    if let Some(source) = source {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        out = out.insert_header((REPLAY_SOURCE, format!("instance={source};region=lo;t={t}")));
    }
    let mut res = out.send_body(body.clone()).await.map_err(|e| match e {
        awc::error::SendRequestError::Connect(e) => Failure::Refused(e.to_string()),
        other => Failure::Lost(other.to_string()),
    })?;
    let body = res
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .map_err(|e| Failure::Lost(e.to_string()))?;
    Ok(Answer {
        status: res.status(),
        headers: res.headers().clone(),
        body,
    })
}

/// The machine an answer asks to replay at (`fly-replay: instance=<id>[;…]`).
fn replay_target(answer: &Answer) -> Option<String> {
    let value = answer.headers.get(REPLAY)?.to_str().ok()?;
    value
        .split([';', ','])
        .filter_map(|field| field.trim().split_once('='))
        .find(|(key, _)| *key == "instance")
        .map(|(_, id)| id.to_owned())
}

/// An answer of the proxy itself.
fn failed(status: StatusCode, code: &str, detail: String) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({"error": code, "detail": detail}))
}

/// The client's answer for a machine's failure.
fn answer_failure(machines: &Machines, failure: Failure) -> HttpResponse {
    match failure {
        Failure::Refused(why) => failed(StatusCode::BAD_GATEWAY, "machine_unreachable", why),
        Failure::Lost(why) => {
            machines.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            failed(StatusCode::GATEWAY_TIMEOUT, "machine_timeout", why)
        }
    }
}

/// Passes a machine's answer on, without the proxy's own headers.
fn relay(answer: Answer) -> HttpResponse {
    let mut out = HttpResponse::build(answer.status);
    for (name, value) in &answer.headers {
        if !HOP_BY_HOP.contains(name) && name != REPLAY {
            out.append_header((name.clone(), value.clone()));
        }
    }
    out.body(answer.body)
}

/// The first machine's answer: the forced one's, or the next in the rotation that takes
/// the connection. Also which machine answered.
async fn first_answer(
    machines: &Machines,
    client: &awc::Client,
    req: &HttpRequest,
    body: &Bytes,
) -> Result<(String, Answer), Failure> {
    let forced = req
        .headers()
        .get(FORCE_INSTANCE)
        .and_then(|v| v.to_str().ok());
    let candidates = match forced {
        Some(id) => match machines.address(id) {
            Some(addr) => vec![(id.to_owned(), addr)],
            None => return Err(Failure::Refused(format!("no machine {id}"))),
        },
        None => machines.rotation(),
    };
    let mut last = Failure::Refused("no machines".into());
    for (id, addr) in candidates {
        match send(client, addr, req, body, None).await {
            Ok(answer) => return Ok((id, answer)),
            Err(Failure::Refused(why)) => {
                machines.counters.refused.fetch_add(1, Ordering::Relaxed);
                last = Failure::Refused(format!("{id}: {why}"));
            }
            Err(lost) => return Err(lost),
        }
    }
    Err(last)
}

async fn route(
    req: HttpRequest,
    body: Bytes,
    machines: web::Data<Machines>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    machines.counters.requests.fetch_add(1, Ordering::Relaxed);
    let (from, answer) = match first_answer(&machines, &client, &req, &body).await {
        Ok(answered) => answered,
        Err(failure) => return answer_failure(&machines, failure),
    };
    let Some(target) = replay_target(&answer) else {
        return relay(answer);
    };
    machines.counters.replays.fetch_add(1, Ordering::Relaxed);
    let Some(addr) = machines.address(&target) else {
        let why = format!("{from} asked to replay at {target}, which is no machine here");
        return failed(StatusCode::BAD_GATEWAY, "machine_unreachable", why);
    };
    match send(&client, addr, &req, &body, Some(&from)).await {
        Ok(replayed) => {
            if replay_target(&replayed).is_some() {
                machines
                    .counters
                    .second_replays
                    .fetch_add(1, Ordering::Relaxed);
            }
            relay(replayed)
        }
        Err(failure) => answer_failure(&machines, failure),
    }
}
