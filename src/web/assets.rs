//! Static assets embedded in the binary, served at `/assets/<path>` on every host.
//!
//! Each answer carries a strong `ETag` (SHA-256 of the content) and is revalidated
//! (`304`) unless the URL names the current version (`?v=<asset version>`, as the page
//! shells do), which may be cached for a year: a new binary changes the version.
use std::sync::OnceLock;

use actix_web::http::header::{self, EntityTag, IfNoneMatch};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::headers;
use crate::http::error::{ApiError, Result};
use crate::http::host::{HostContext, context_of};
use crate::server::state::AppState;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/api.js", JS),
    asset!("js/ui.js", JS),
    asset!("js/login.js", JS),
    asset!("js/vendor.js", JS),
    asset!("js/vendor-webhooks.js", JS),
    asset!("js/vendor-oauth.js", JS),
    asset!("js/usage-chart.js", JS),
    asset!("js/tenant.js", JS),
    asset!("js/tenant-admin.js", JS),
    asset!("js/gauge.js", JS),
    asset!("vendor/uplot/uPlot.iife.min.js", JS),
    asset!("vendor/uplot/uPlot.min.css", CSS),
    asset!("vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
];

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn digest_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// ETags of [`ASSETS`], in the same order, computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| ASSETS.iter().map(|a| digest_hex(a.body)).collect())
}

/// A short digest of every asset together: changes whenever any asset does.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| digest_hex(etags().concat().as_bytes())[..12].to_owned())
}

fn etag_of(asset: &Asset) -> &'static str {
    ASSETS
        .iter()
        .position(|a| std::ptr::eq(a, asset))
        .and_then(|i| etags().get(i))
        .map_or("", String::as_str)
}

#[derive(serde::Deserialize)]
pub struct AssetQuery {
    v: Option<String>,
}

fn not_found(path: &str) -> ApiError {
    ApiError::not_found(format!(
        "no asset '{path}'; pages link to their assets themselves"
    ))
}

/// `GET /assets/{path}`.
pub async fn serve(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<AssetQuery>,
) -> Result<HttpResponse> {
    // The host of a tenant that does not exist serves nothing, assets included.
    if let HostContext::Tenant(t) = context_of(&req)
        && !state.registry.exists(&t)?
    {
        return Err(ApiError::unknown_tenant());
    }
    let asset = find(path.as_str()).ok_or_else(|| not_found(path.as_str()))?;
    let tag = EntityTag::new_strong(etag_of(asset).to_owned());
    let cache = if query.v.as_deref() == Some(version()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = match req.headers().get(header::IF_NONE_MATCH) {
        Some(_) => match header::Header::parse(&req) {
            Ok(IfNoneMatch::Any) => true,
            Ok(IfNoneMatch::Items(items)) => items.iter().any(|t| t.weak_eq(&tag)),
            Err(_) => false,
        },
        None => false,
    };
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    headers::secure(&mut res)
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, cache));
    if fresh {
        return Ok(res.finish());
    }
    Ok(res.content_type(asset.content_type).body(asset.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_and_has_its_own_etag() {
        for a in ASSETS {
            assert!(std::ptr::eq(find(a.path).unwrap(), a), "{}", a.path);
            assert_eq!(etag_of(a), digest_hex(a.body));
        }
        assert_eq!(version().len(), 12);
        assert!(find("../Cargo.toml").is_none());
    }
}
