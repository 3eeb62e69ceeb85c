//! Connecting: the store URL, TLS through rustls, and the session settings every
//! connection gets.
//!
//! `sslmode` follows libpq's meaning: `disable` (plain TCP), `prefer` (the default:
//! TLS if the server offers it, without checking its certificate), `require` (TLS, the
//! certificate not checked), `verify-full` (TLS, the certificate checked against the
//! Mozilla roots or `sslrootcert=PATH`, and the host name against it).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::Client;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Durability, StorageError};

/// How long opening a connection may take unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `sslmode` of the store URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

/// Opens connections to one database.
pub(super) struct Connector {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// `SET synchronous_commit` of every session: `on` (strict) or `off` (relaxed).
    synchronous_commit: &'static str,
    /// The database, for messages (never the password).
    target: String,
}

impl Connector {
    /// Parses `url` and prepares TLS; opens nothing yet.
    pub(super) fn new(url: &str, durability: Durability) -> Result<Self, StorageError> {
        let (mut config, mode, root_cert) = parse_url(url)?;
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
        });
        if config.get_application_name().is_none() {
            config.application_name("permetrix");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = describe(&config);
        let tls = MakeRustlsConnect::new(tls_config(mode, root_cert.as_deref())?);
        Ok(Connector {
            config,
            tls,
            synchronous_commit: match durability {
                Durability::Strict => "on",
                Durability::Relaxed { .. } => "off",
            },
            target,
        })
    }

    /// The database, for messages: `user@host:port/database`.
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// Opens a connection. Its I/O task is spawned on the current runtime: call this on
    /// the store's runtime thread.
    pub(super) async fn connect(&self) -> Result<Client, StorageError> {
        let context = || format!("connecting to PostgreSQL at {}", self.target);
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| StorageError::io(context(), e))?;
        let target = self.target.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(database = %target, error = %e, "a PostgreSQL connection ended");
            }
        });
        // Strict durability is the server's synchronous commit; relaxed lets a commit
        // return before its WAL is flushed (a database crash may lose the last ones).
        client
            .batch_execute(&format!(
                "SET synchronous_commit = {}",
                self.synchronous_commit
            ))
            .await
            .map_err(|e| StorageError::io(context(), e))?;
        Ok(client)
    }
}

/// `user@host:port/database` of `config`.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

fn bad_url(why: impl std::fmt::Display) -> StorageError {
    StorageError::Foreign(format!(
        "the PostgreSQL store URL is not usable: {why}. Pass \
         postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full (sslmode is one of \
         disable, prefer, require, verify-full)"
    ))
}

/// Splits our own parameters (`sslmode`, `sslrootcert`) off `url` and parses the rest.
fn parse_url(
    url: &str,
) -> Result<(tokio_postgres::Config, TlsMode, Option<PathBuf>), StorageError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(bad_url("it does not start with postgres://"));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = TlsMode::Prefer;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = match percent_decode(value)?.as_str() {
                    "disable" => TlsMode::Disable,
                    "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-full" => TlsMode::VerifyFull,
                    other => return Err(bad_url(format!("sslmode={other} is not supported"))),
                }
            }
            "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value)?)),
            _ => kept.push(pair),
        }
    }
    if root_cert.is_some() && mode != TlsMode::VerifyFull {
        return Err(bad_url("sslrootcert is only used with sslmode=verify-full"));
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let config = rest.parse().map_err(bad_url)?;
    Ok((config, mode, root_cert))
}

fn percent_decode(value: &str) -> Result<String, StorageError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad_url("a parameter holds a broken %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_url("a parameter is not UTF-8"))
}

fn tls_config(mode: TlsMode, root_cert: Option<&Path>) -> Result<ClientConfig, StorageError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::io("setting up TLS for PostgreSQL", e))?;
    let config = match mode {
        TlsMode::VerifyFull => {
            let mut roots = RootCertStore::empty();
            match root_cert {
                Some(path) => {
                    let certs = CertificateDer::pem_file_iter(path)
                        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                        .map_err(|e| {
                            StorageError::Foreign(format!(
                                "cannot read the CA certificates in sslrootcert={}: {e}",
                                path.display()
                            ))
                        })?;
                    let (added, _) = roots.add_parsable_certificates(certs);
                    if added == 0 {
                        return Err(StorageError::Foreign(format!(
                            "sslrootcert={} holds no usable CA certificate",
                            path.display()
                        )));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// `sslmode=prefer|require`: the connection is encrypted, but whose certificate the
/// server shows is not checked (libpq's meaning of these modes). The handshake's own
/// signatures are still verified.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_cert_are_ours_and_the_rest_goes_to_the_driver() {
        let (config, mode, root) = parse_url(
            "postgres://u:secret@db.example:6543/licenses?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(mode, TlsMode::VerifyFull);
        assert_eq!(root, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(describe(&config), "u@db.example:6543/licenses");
        let (_, mode, _) = parse_url("postgresql://u@h/d").unwrap();
        assert_eq!(mode, TlsMode::Prefer);
    }

    #[test]
    fn unusable_urls_are_refused_with_what_to_pass() {
        for (url, says) in [
            ("mysql://u@h/d", "postgres://"),
            (
                "postgres://u@h/d?sslmode=verify-ca",
                "verify-ca is not supported",
            ),
            (
                "postgres://u@h/d?sslrootcert=x",
                "only used with sslmode=verify-full",
            ),
            ("postgres://u@h/d?sslmode=%zz", "%-escape"),
        ] {
            let err = parse_url(url).err().unwrap().to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("secret"));
        }
    }

    #[test]
    fn every_mode_builds_a_tls_configuration() {
        for mode in [
            TlsMode::Disable,
            TlsMode::Prefer,
            TlsMode::Require,
            TlsMode::VerifyFull,
        ] {
            tls_config(mode, None).unwrap();
        }
        let err = tls_config(TlsMode::VerifyFull, Some(Path::new("/nonexistent/ca.pem")));
        assert!(err.err().unwrap().to_string().contains("sslrootcert"));
    }
}
