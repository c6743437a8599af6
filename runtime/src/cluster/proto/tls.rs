//! Optional mutual TLS on every TCP connection (rustls), as Ray's `RAY_USE_TLS`: turned on by
//! `RAYKIT_TLS_CERT`, `RAYKIT_TLS_KEY` and `RAYKIT_TLS_CA` (all three, or none), which
//! `raykit start --tls-cert/--tls-key/--tls-ca` set for the daemon and its workers.
//!
//! Both sides present a certificate signed by the cluster's CA and check the other's against
//! it. The name in a certificate is not checked: daemons are reached by addresses that change,
//! and the CA is private to the cluster, so holding a certificate it signed is what makes a peer
//! a member. The token handshake runs inside TLS as it does without it.

use std::io::BufReader;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};

use crate::error::{Error, ErrorKind, Result};

/// The certificate chain of this process (PEM).
pub const CERT_ENV: &str = "RAYKIT_TLS_CERT";
/// The private key of that certificate (PEM).
pub const KEY_ENV: &str = "RAYKIT_TLS_KEY";
/// The cluster's CA certificate (PEM): peers must present a certificate it signed.
pub const CA_ENV: &str = "RAYKIT_TLS_CA";

/// This process's TLS settings, both ways.
#[derive(Clone)]
pub struct Tls {
    /// For connections this process opens.
    pub connector: tokio_rustls::TlsConnector,
    /// For connections this process accepts.
    pub acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

fn config_error(message: String) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// The TLS settings of this process, read once from the environment: `None` when TLS is off,
/// an error when the settings are incomplete or unreadable.
pub fn current() -> Result<Option<Tls>> {
    static TLS: OnceLock<std::result::Result<Option<Tls>, Error>> = OnceLock::new();
    TLS.get_or_init(|| {
        let get = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        match (get(CERT_ENV), get(KEY_ENV), get(CA_ENV)) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => {
                load(Path::new(&cert), Path::new(&key), Path::new(&ca)).map(Some)
            }
            _ => Err(config_error(format!(
                "TLS needs all of {CERT_ENV}, {KEY_ENV} and {CA_ENV} (or --tls-cert, --tls-key \
                 and --tls-ca), or none of them"
            ))),
        }
    })
    .clone()
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        config_error(format!(
            "cannot read the TLS {what} {}: {e}",
            path.display()
        ))
    })
}

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_pem(path, what)?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(&pem[..]))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_error(format!("{} is not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// Builds the settings from PEM files.
pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Tls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(cert, "certificate")?;
    let key_pem = read_pem(key, "key")?;
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut BufReader::new(&key_pem[..]))
            .map_err(|e| config_error(format!("{} is not PEM: {e}", key.display())))?
            .ok_or_else(|| config_error(format!("{} holds no private key", key.display())))?;
    let mut roots = RootCertStore::empty();
    for c in certs(ca, "CA certificate")? {
        roots
            .add(c)
            .map_err(|e| config_error(format!("the CA certificate {}: {e}", ca.display())))?;
    }
    let roots = Arc::new(roots);
    let bad = |e: &dyn std::fmt::Display| config_error(format!("TLS settings: {e}"));

    let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| bad(&e))?;
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_client_cert_verifier(clients)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| bad(&e))?;

    let servers = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| bad(&e))?;
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyNameFromTheCa {
            inner: servers,
            provider,
        }))
        .with_client_auth_cert(chain, key)
        .map_err(|e| bad(&e))?;
    Ok(Tls {
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
    })
}

/// The name a connecting side presents (certificates' names are not checked).
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("raykit").expect("a valid DNS name")
}

/// Checks a server's chain against the CA like WebPKI does, but accepts any name in it.
#[derive(Debug)]
struct AnyNameFromTheCa {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyNameFromTheCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
