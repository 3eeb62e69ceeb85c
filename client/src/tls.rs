//! The HTTP client's TLS: rustls with the ring provider and the Mozilla root set
//! (webpki-roots), so no system certificate store is needed in slim build-agent images,
//! plus the CA certificates an operator names (`--ca-cert`): a broker behind a company's
//! own CA. The server's webhook deliveries use the public roots alone.
use std::path::Path;
use std::time::Duration;

/// CA certificates trusted besides the public roots (`--ca-cert`); none by default.
#[derive(Clone, Debug, Default)]
pub struct ExtraRoots {
    #[cfg(feature = "tls")]
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl ExtraRoots {
    /// Reads the certificates of a PEM file; an error says what is wrong with it.
    pub fn load(path: &Path) -> Result<Self, String> {
        #[cfg(feature = "tls")]
        {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let unusable = |e: &dyn std::fmt::Display| {
                format!(
                    "--ca-cert {}: {e}; name a PEM file of CA certificates \
                     (-----BEGIN CERTIFICATE-----)",
                    path.display()
                )
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| unusable(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unusable(&e))?;
            if certs.is_empty() {
                return Err(unusable(&"it holds no certificate"));
            }
            let mut roots = rustls::RootCertStore::empty();
            let (_, invalid) = roots.add_parsable_certificates(certs.iter().cloned());
            if invalid > 0 {
                return Err(unusable(&format!(
                    "{invalid} of its {} certificates cannot be parsed",
                    certs.len()
                )));
            }
            Ok(ExtraRoots { certs })
        }
        #[cfg(not(feature = "tls"))]
        Err(format!(
            "--ca-cert {}: this permetrix was built without TLS; rebuild with the default \
             'tls' feature",
            path.display()
        ))
    }
}

/// An HTTP client (with TLS when built with it, trusting `extra` besides the public
/// roots) whose requests time out after `timeout`.
pub fn http_client(timeout: Duration, extra: &ExtraRoots) -> awc::Client {
    let builder = awc::Client::builder().timeout(timeout);
    #[cfg(feature = "tls")]
    let builder = builder.connector(awc::Connector::new().rustls_0_23(tls_config(extra)));
    #[cfg(not(feature = "tls"))]
    let _ = extra;
    builder.finish()
}

/// The client configuration: the Mozilla roots and `extra`, HTTP/1.1.
#[cfg(feature = "tls")]
pub fn tls_config(extra: &ExtraRoots) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Checked when loaded: every one parses.
    roots.add_parsable_certificates(extra.certs.iter().cloned());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        // ring implements every default protocol version, so this is not reached;
        // fall back to rustls' own defaults rather than fail.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    std::sync::Arc::new(config)
}
