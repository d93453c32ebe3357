//! `tls_cert`: days until a certificate expires, from a PEM file or a live endpoint, like
//! `openssl x509 -in FILE -noout -dates`.
//!
//! `days_left` (negative once expired) is also `value`. For a live endpoint the chain is not
//! verified (an expired or self-signed certificate must still be read); a refused connection
//! or failed handshake is an observation with a `reason`.
//!
//! A `file` must be a regular file of at most 4 MiB: a FIFO or a device is an error, never
//! read. The handshake ends within the step's `timeout`, however slowly the server answers.
//!
//! Result: `days_left`, `subject`, `issuer`, `not_before`, `not_after`, `reason`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{
    self, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::probes::{ProbeContext, ProbeOutcome, readfile};
use crate::runbook::value::{Tpl, format_duration};

/// A certificate file larger than this is refused (a PEM bundle of every public CA is a
/// fraction of it).
const PEM_CAP: u64 = 4 * 1024 * 1024;

/// Parameters of the `tls_cert` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsCertParams {
    /// A PEM certificate file.
    #[serde(default)]
    pub file: Option<String>,
    /// A host to connect to.
    #[serde(default)]
    pub host: Option<String>,
    /// Its port (default 443).
    #[serde(default)]
    pub port: Option<Tpl<u16>>,
}

impl TlsCertParams {
    /// Either `file` or `host`.
    ///
    /// # Errors
    /// A message when neither or both are given.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.file, &self.host) {
            (Some(_), None) => {
                if self.port.is_some() {
                    Err("`port` goes with `host`, not `file`".into())
                } else {
                    Ok(())
                }
            }
            (None, Some(_)) => Ok(()),
            _ => Err("give exactly one of `file` or `host`".into()),
        }
    }
}

/// Result fields of the `tls_cert` probe.
pub const FIELDS: &[&str] = &[
    "days_left",
    "subject",
    "issuer",
    "not_before",
    "not_after",
    "reason",
];

/// Run the probe: parse the first certificate of a PEM file, or the leaf a server presents.
pub async fn probe(params: TlsCertParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    if let Err(e) = params.validate() {
        return ProbeOutcome::Error(e);
    }
    if let Some(file) = &params.file {
        // A FIFO or a device (`/dev/zero`) is refused before any read: a blocking read of one
        // would outlive the step's timeout, and the process with it.
        let path = file.clone();
        let read = tokio::task::spawn_blocking(move || readfile::read_regular_file(&path, PEM_CAP));
        let bytes = match read.await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return ProbeOutcome::Error(format!("cannot read `{file}`: {e}")),
            Err(e) => return ProbeOutcome::Error(format!("read task failed: {e}")),
        };
        return match first_pem_cert(&bytes) {
            Ok(der) => describe(&der),
            Err(e) => ProbeOutcome::Error(format!("`{file}`: {e}")),
        };
    }
    let host = params.host.clone().unwrap_or_default();
    let port = match &params.port {
        None => 443,
        Some(Tpl::Lit(p)) => *p,
        Some(Tpl::Template(t)) => {
            return ProbeOutcome::Error(format!("`port` was not rendered: `{t}`"));
        }
    };
    match tokio::time::timeout(cx.timeout, peer_cert(&host, port)).await {
        Err(_) => ProbeOutcome::unreachable(format!(
            "no TLS handshake with {host}:{port} within {}",
            format_duration(cx.timeout)
        )),
        Ok(Err(Fetch::Unreachable(reason))) => ProbeOutcome::unreachable(reason),
        Ok(Err(Fetch::Error(e))) => ProbeOutcome::Error(e),
        Ok(Ok(der)) => describe(&der),
    }
}

fn first_pem_cert(bytes: &[u8]) -> Result<Vec<u8>, String> {
    for pem in Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| format!("not a PEM file: {e}"))?;
        if pem.label == "CERTIFICATE" {
            return Ok(pem.contents);
        }
    }
    Err("no `CERTIFICATE` block".into())
}

fn describe(der: &[u8]) -> ProbeOutcome {
    let cert = match X509Certificate::from_der(der) {
        Ok((_, c)) => c,
        Err(e) => return ProbeOutcome::Error(format!("cannot parse the certificate: {e}")),
    };
    let validity = cert.validity();
    let rfc3339 = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let not_after = validity.not_after.timestamp();
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let days_left = ((not_after as f64 - now) / 86_400.0 * 1000.0).round() / 1000.0;
    let mut m = Map::new();
    m.insert("value".into(), json!(days_left));
    m.insert("days_left".into(), json!(days_left));
    m.insert("subject".into(), json!(cert.subject().to_string()));
    m.insert("issuer".into(), json!(cert.issuer().to_string()));
    m.insert(
        "not_before".into(),
        json!(rfc3339(validity.not_before.timestamp())),
    );
    m.insert("not_after".into(), json!(rfc3339(not_after)));
    ProbeOutcome::Observed(m)
}

enum Fetch {
    Unreachable(String),
    Error(String),
}

/// Handshake and keep the leaf certificate. The chain is deliberately not verified: the probe
/// reports expiry, and an expired or self-signed certificate must still be read.
async fn peer_cert(host: &str, port: u16) -> Result<Vec<u8>, Fetch> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Fetch::Error(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| Fetch::Error(format!("bad host `{host}`: {e}")))?;
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| Fetch::Unreachable(format!("cannot connect to {host}:{port}: {e}")))?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| Fetch::Unreachable(format!("TLS handshake with {host}:{port} failed: {e}")))?;
    let (_, conn) = tls.get_ref();
    conn.peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or_else(|| Fetch::Unreachable(format!("{host}:{port} presented no certificate")))
}

/// Accepts any certificate but still checks handshake signatures against it.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
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
