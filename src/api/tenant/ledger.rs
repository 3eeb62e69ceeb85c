//! The overage ledger: the tenant's list and chain check. The vendor's export of a
//! customer's ledger (`api::vendor::ledger`) serves the same list, with every hash, so
//! that either side can check the chain.
//!
//! Each charge's `hash` is SHA-256 over length-prefixed fields (README, "Checking the
//! ledger"); `prev_hash` is the previous charge's `hash`. The JSON and CSV exports
//! carry every hashed field exactly (`amount_cents`, `charged_at_ms`).
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::{LedgerHead, rfc3339};
use permetrix_actors::messages::GetLedgerHead;
use permetrix_actors::reports::{self, ChargeFilter, LedgerCheck};
use permetrix_storage::TenantId;
use permetrix_storage::records::ChargeRecord;
use serde::{Deserialize, Serialize};

use crate::api::reporting::{Format, blocking, cell, csv_response};
use crate::auth::TenantBorrower;
use crate::http::error::{ApiError, Result};
use crate::http::input::parse_time;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/overage-charges", web::get().to(tenant_list))
        .route("/overage-charges/verify", web::get().to(tenant_verify));
}

/// Charges per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 1_000;
/// Most charges one request returns.
const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize)]
pub struct ListQuery {
    tool: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after_seq: Option<u64>,
    limit: Option<usize>,
    format: Option<String>,
}

/// One charge as both sides see it.
#[derive(Serialize)]
struct ChargeView {
    id: String,
    seq: u64,
    tool: String,
    product_id: String,
    /// `None` for a viewer, who is shown no borrow id (it would return the seat).
    borrow_id: Option<String>,
    user: String,
    charged_at: String,
    charged_at_ms: i64,
    amount: f64,
    amount_cents: i64,
    prev_hash: String,
    hash: String,
}

impl From<&ChargeRecord> for ChargeView {
    fn from(c: &ChargeRecord) -> Self {
        ChargeView {
            id: c.id.clone(),
            seq: c.seq,
            tool: c.product_name.clone(),
            product_id: c.product_id.clone(),
            borrow_id: Some(c.borrow_id.to_string()),
            user: c.user.clone(),
            charged_at: rfc3339(c.charged_at),
            charged_at_ms: c.charged_at.millis(),
            amount: c.amount.as_decimal(),
            amount_cents: c.amount.cents(),
            prev_hash: hex::encode(c.prev_hash),
            hash: hex::encode(c.hash),
        }
    }
}

const CSV_HEADER: [&str; 12] = [
    "seq",
    "id",
    "charged_at",
    "charged_at_ms",
    "product_id",
    "tool",
    "borrow_id",
    "user",
    "amount",
    "amount_cents",
    "prev_hash",
    "hash",
];

fn csv_row(c: &ChargeView) -> Vec<String> {
    vec![
        c.seq.to_string(),
        c.id.clone(),
        c.charged_at.clone(),
        c.charged_at_ms.to_string(),
        cell(&c.product_id),
        cell(&c.tool),
        c.borrow_id.clone().unwrap_or_default(),
        cell(&c.user),
        format!("{:.2}", c.amount),
        c.amount_cents.to_string(),
        c.prev_hash.clone(),
        c.hash.clone(),
    ]
}

/// Who reads a ledger: a viewer is shown no borrow ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// Every field.
    Full,
    /// Borrow ids left out.
    Viewer,
}

/// Lists the tenant's charges matching `q` (JSON or CSV).
pub async fn list(
    state: &AppState,
    tenant: TenantId,
    q: ListQuery,
    reader: Reader,
) -> Result<HttpResponse> {
    let format = Format::parse(q.format.as_deref())?;
    let product_id = match q.tool.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(tool) => {
            let view = state.registry.view(&tenant).await?;
            let found = view
                .tools
                .iter()
                .find(|(name, id, _)| name == tool || id == tool)
                .map(|(_, id, _)| id.clone());
            Some(found.ok_or_else(|| {
                ApiError::Domain(permetrix_actors::domain::DomainError::UnknownTool(
                    tool.to_owned(),
                ))
            })?)
        }
    };
    // Either end is optional: the whole ledger unless a window is asked for.
    let from = parse_time("from", q.from.as_deref())?;
    let to = parse_time("to", q.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to)
        && t <= f
    {
        return Err(ApiError::invalid(
            "'to' must be after 'from' (the window is from <= charged_at < to)",
        ));
    }
    let filter = ChargeFilter {
        product_id,
        from,
        to,
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let after = q.after_seq.unwrap_or(0);
    let store = state.registry.store().clone();
    let (charges, next) =
        blocking(move || reports::charges(store.as_ref(), &tenant, &filter, after, limit)).await?;
    let mut views: Vec<ChargeView> = charges.iter().map(ChargeView::from).collect();
    if reader == Reader::Viewer {
        for v in &mut views {
            v.borrow_id = None;
        }
    }
    match format {
        Format::Json => Ok(HttpResponse::Ok().json(serde_json::json!({
            "charges": views,
            "next_after_seq": next,
        }))),
        Format::Csv => {
            let mut rows = vec![CSV_HEADER.iter().map(|h| (*h).to_owned()).collect()];
            rows.extend(views.iter().map(csv_row));
            csv_response(rows)
        }
    }
}

async fn tenant_list(
    state: web::Data<AppState>,
    caller: TenantBorrower,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let reader = if caller.is_viewer() {
        Reader::Viewer
    } else {
        Reader::Full
    };
    list(&state, caller.tenant, query.into_inner(), reader).await
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    anchor_seq: Option<u64>,
    anchor_hash: Option<String>,
}

fn anchor(q: &VerifyQuery) -> Result<Option<LedgerHead>> {
    match (q.anchor_seq, q.anchor_hash.as_deref()) {
        (None, None) => Ok(None),
        (Some(seq), Some(h)) => {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(h, &mut hash).map_err(|_| {
                ApiError::invalid("anchor_hash must be the 64 hex digits of a charge's hash")
            })?;
            Ok(Some(LedgerHead { seq, hash }))
        }
        _ => Err(ApiError::invalid(
            "send anchor_seq and anchor_hash together (a charge's seq and hash saved earlier)",
        )),
    }
}

#[derive(Serialize)]
struct VerifyView {
    valid: bool,
    charges: u64,
    head_seq: u64,
    head_hash: String,
    booked_seq: u64,
    first_invalid_seq: Option<u64>,
    problem: Option<String>,
}

pub async fn verify(state: &AppState, tenant: TenantId, q: VerifyQuery) -> Result<HttpResponse> {
    let anchor = anchor(&q)?;
    // The actor's head first: every charge it acknowledged is at or before it, so a
    // borrow racing this check cannot make it fail.
    let booked = state.registry.send(&tenant, GetLedgerHead).await?;
    let store = state.registry.store().clone();
    let check: LedgerCheck =
        blocking(move || reports::verify_ledger(store.as_ref(), &tenant, booked, anchor)).await?;
    Ok(HttpResponse::Ok().json(VerifyView {
        valid: check.valid,
        charges: check.verified,
        head_seq: check.head.seq,
        head_hash: hex::encode(check.head.hash),
        booked_seq: booked.seq,
        first_invalid_seq: check.first_invalid_seq,
        problem: check.problem,
    }))
}

async fn tenant_verify(
    state: web::Data<AppState>,
    caller: TenantBorrower,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse> {
    verify(&state, caller.tenant, query.into_inner()).await
}
