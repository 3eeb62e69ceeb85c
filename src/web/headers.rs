//! Security headers of pages and assets.
use actix_web::HttpResponseBuilder;
use actix_web::http::header;

/// Scripts, styles and connections only from this host; no inline script or style, no
/// framing, no plugins. `style-src` stays `'self'`: the chart library sets element
/// styles through the CSSOM, which a policy does not restrict.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers every page and asset carries.
pub fn secure(res: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    res.insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
}
