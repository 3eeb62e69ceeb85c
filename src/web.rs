//! The web portals: the landing page (apex host), the vendor portal (`vendor.<base>`)
//! and the tenant dashboard (`<tenant>.<base>`), with their login pages.
//!
//! Pages are small server-rendered HTML shells ([`pages`]) that carry what the server
//! already knows (who is logged in, the CSRF token, the asset version); the behaviour
//! is a little vanilla JavaScript (ES modules under `assets/js/`) that calls the JSON API
//! with the session cookie. Every asset is embedded in the binary ([`assets`]), so the
//! portals work offline and need no separate front-end server. Only `/`, `/login` and
//! `/assets/*` are taken; everything else stays the API's.
mod assets;
mod headers;
mod pages;
mod portal_session;
mod template;

use actix_web::web;

/// Mounts the page and asset routes. Must come before the host scopes in
/// [`crate::api::configure`], which answer every path they do not know with 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(pages::index))
        .route("/login", web::get().to(pages::login))
        .route("/assets/{path:.*}", web::get().to(assets::serve));
}
