//! The HTTP client of the delivery worker: connections go through the guarded resolver
//! (no private addresses), `https` through rustls with the Mozilla roots, redirects are
//! not followed (a redirect could lead anywhere), and nothing waits longer than the
//! delivery timeout.
use super::WebhookSettings;
use super::address::GuardedResolver;

/// The client; it lives on the worker's thread.
pub(super) fn client(settings: &WebhookSettings) -> awc::Client {
    let resolver = actix_tls::connect::Resolver::custom(GuardedResolver {
        allow_private: settings.allow_private,
    });
    let connector = awc::Connector::new()
        .connector(actix_tls::connect::Connector::new(resolver).service())
        .timeout(settings.timeout);
    #[cfg(feature = "tls")]
    let connector = connector.rustls_0_23(permetrix_client::tls::tls_config(
        &permetrix_client::tls::ExtraRoots::default(),
    ));
    awc::Client::builder()
        .connector(connector)
        .disable_redirects()
        .timeout(settings.timeout)
        .add_default_header((
            awc::http::header::USER_AGENT,
            concat!("permetrix-webhooks/", env!("CARGO_PKG_VERSION")),
        ))
        .finish()
}
