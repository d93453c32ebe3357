//! Who may post to a webhook endpoint: bearer tokens and basic auth credentials read from
//! files, and HMAC-SHA256 signatures over the body (and a timestamp) for senders that sign.
//!
//! What the senders send:
//! - Alertmanager's `http_config.authorization` (`type: Bearer`, `credentials_file`) sends
//!   `Authorization: Bearer <token>`; `http_config.basic_auth` (`username`, `password_file`)
//!   sends `Authorization: Basic base64(user:password)`. Both read the file and trim
//!   whitespace, as [`read_secret_file`] does.
//! - Grafana's webhook contact point signs when `hmacConfig.secret` is set: hex HMAC-SHA256 in
//!   `hmacConfig.header` (default `X-Grafana-Alert-Signature`; the `X-Grafana-Alerting-Signature`
//!   in Grafana's form is a placeholder, never sent) over `timestamp:body` when
//!   `hmacConfig.timestampHeader` is set (the unix seconds are sent in that header), else over
//!   the body alone (no replay window then). See [`SignatureScheme::grafana`]; this is
//!   `HMACRoundTripper.sign` in grafana/alerting's `http/hmac.go`.
//! - Generic senders sign [`SignatureScheme::runbook`]: `X-Runbook-Timestamp: <unix seconds>`
//!   and `X-Runbook-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
//!
//! Several tokens, passwords and HMAC secrets may be valid at once, for rotation: a request
//! passes if any matches. Every comparison of a secret is constant-time: tokens and basic
//! credentials are compared as SHA-256 digests with `subtle::ConstantTimeEq`, against every
//! configured value without stopping at a match (`Authenticator::check_credentials`);
//! signatures likewise ([`SignatureVerifier::verify`]).
//!
//! Secret files: one secret per line (so a file can hold the old and the new token during a
//! rotation), surrounding whitespace and blank lines ignored. A world-writable file is refused
//! (anyone could replace the token); a world-readable one is accepted with a warning, because
//! container secret mounts are often 0644 inside a single-purpose container.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Default replay window for signed requests, in seconds (design §7: ±300 s).
pub const DEFAULT_WINDOW_SECS: u64 = 300;

/// A secret (token, password, HMAC key). `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wrap secret bytes.
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Secrets read from one file, and a warning to log if the file is too open.
#[derive(Debug, Clone)]
pub struct LoadedSecrets {
    /// One per non-blank line, trimmed.
    pub secrets: Vec<Secret>,
    /// Set when the file is readable by every user.
    pub warning: Option<String>,
}

/// A secret file that cannot be used; the server refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFileError {
    /// The file could not be read.
    #[error("cannot read secret file `{path}`: {message}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// Any user could write the file, and so choose the secret.
    #[error("secret file `{path}` is writable by every user (mode {mode:04o}): `chmod 600` it")]
    WorldWritable {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Only whitespace in the file.
    #[error("secret file `{path}` holds no secret")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Read a token, password or HMAC secret file (what Alertmanager's `credentials_file` and
/// `password_file` point at): one secret per line, each trimmed, blank lines skipped.
///
/// # Errors
/// The file cannot be read, is world-writable, or holds only whitespace.
pub fn read_secret_file(path: &Path) -> Result<LoadedSecrets, SecretFileError> {
    use std::os::unix::fs::PermissionsExt;

    let shown = path.display().to_string();
    let read_error = |e: std::io::Error| SecretFileError::Read {
        path: shown.clone(),
        message: e.to_string(),
    };
    let mode = std::fs::metadata(path)
        .map_err(read_error)?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o002 != 0 {
        return Err(SecretFileError::WorldWritable { path: shown, mode });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    let secrets: Vec<Secret> = bytes
        .split(|b| *b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|line| !line.is_empty())
        .map(Secret::new)
        .collect();
    if secrets.is_empty() {
        return Err(SecretFileError::Empty { path: shown });
    }
    let warning = (mode & 0o004 != 0).then(|| {
        format!("secret file `{shown}` is readable by every user (mode {mode:04o}): `chmod 600` it")
    });
    Ok(LoadedSecrets { secrets, warning })
}

/// Request headers, looked up by name (ASCII case-insensitive). Implemented for axum's
/// `HeaderMap` (what the server has) and for lists of pairs (tests).
pub trait Headers {
    /// The first value of header `name`, if present and text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for axum::http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        // `get` with a name that is not a valid header name finds nothing; a value that is not
        // visible ASCII reads as absent (and so fails authentication).
        self.get(name)?.to_str().ok()
    }
}

impl Headers for [(String, String)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Headers for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Why a request was refused (answered 401, nothing else done). `Display` is for the log and
/// says no more than the kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, an unknown scheme, or credentials that match none configured.
    #[error("unauthorized")]
    Unauthorized,
    /// The signature header is absent.
    #[error("missing signature")]
    MissingSignature,
    /// The scheme signs a timestamp and its header is absent: the usual sign of a sender that
    /// signs the body alone (Grafana without `hmacConfig.timestampHeader`).
    #[error("missing timestamp")]
    MissingTimestamp,
    /// The signature matches no configured secret (or is not `<prefix><64 hex digits>`).
    #[error("bad signature")]
    BadSignature,
    /// The timestamp header is not an integer number of seconds.
    #[error("invalid timestamp")]
    InvalidTimestamp,
    /// The timestamp is further than the window from now, in the past or the future.
    #[error("stale timestamp")]
    StaleTimestamp,
}

impl AuthError {
    /// Kebab-case code, for metrics labels and audit rows.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::MissingSignature => "missing-signature",
            Self::MissingTimestamp => "missing-timestamp",
            Self::BadSignature => "bad-signature",
            Self::InvalidTimestamp => "invalid-timestamp",
            Self::StaleTimestamp => "stale-timestamp",
        }
    }
}

/// How a sender signs: which headers, what prefix, what separates timestamp and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureScheme {
    /// Header carrying the signature.
    pub signature_header: String,
    /// Text before the hex digits in the signature header (`sha256=`, or empty).
    pub prefix: String,
    /// Header carrying the unix-seconds timestamp that is signed; `None`: the body alone is
    /// signed and there is no replay window.
    pub timestamp_header: Option<String>,
    /// Between timestamp and body in the signed bytes.
    pub separator: String,
}

impl SignatureScheme {
    /// Our header for the signature.
    pub const RUNBOOK_SIGNATURE_HEADER: &'static str = "X-Runbook-Signature";
    /// Our header for the timestamp.
    pub const RUNBOOK_TIMESTAMP_HEADER: &'static str = "X-Runbook-Timestamp";
    /// Grafana's default signature header (`hmacConfig.header` left empty).
    pub const GRAFANA_SIGNATURE_HEADER: &'static str = "X-Grafana-Alert-Signature";
    /// The timestamp header Grafana's examples use (`hmacConfig.timestampHeader`; Grafana sends
    /// no timestamp unless it is set).
    pub const GRAFANA_TIMESTAMP_HEADER: &'static str = "X-Grafana-Alerting-Timestamp";

    /// The generic endpoint's scheme: `X-Runbook-Signature: sha256=<hex>` over
    /// `<X-Runbook-Timestamp>.<body>`.
    #[must_use]
    pub fn runbook() -> Self {
        Self {
            signature_header: Self::RUNBOOK_SIGNATURE_HEADER.into(),
            prefix: "sha256=".into(),
            timestamp_header: Some(Self::RUNBOOK_TIMESTAMP_HEADER.into()),
            separator: ".".into(),
        }
    }

    /// Grafana's scheme: bare hex over `<timestamp>:<body>`, or over the body alone when no
    /// timestamp header is configured. `signature_header` defaults to
    /// [`Self::GRAFANA_SIGNATURE_HEADER`]; pass the same values as the contact point's
    /// `hmacConfig.header` and `hmacConfig.timestampHeader`.
    #[must_use]
    pub fn grafana(signature_header: Option<&str>, timestamp_header: Option<&str>) -> Self {
        Self {
            signature_header: signature_header
                .unwrap_or(Self::GRAFANA_SIGNATURE_HEADER)
                .into(),
            prefix: String::new(),
            timestamp_header: timestamp_header.map(Into::into),
            separator: ":".into(),
        }
    }

    /// The signature header value a sender would send: for clients and tests.
    /// `timestamp` is ignored when the scheme has no timestamp header.
    #[must_use]
    pub fn sign(&self, secret: &[u8], timestamp: i64, body: &[u8]) -> String {
        let ts = timestamp.to_string();
        let ts = self.timestamp_header.as_ref().map(|_| ts.as_str());
        format!("{}{}", self.prefix, hex::encode(self.mac(secret, ts, body)))
    }

    fn mac(&self, secret: &[u8], timestamp: Option<&str>, body: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .expect("HMAC takes keys of any length");
        if let Some(ts) = timestamp {
            mac.update(ts.as_bytes());
            mac.update(self.separator.as_bytes());
        }
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// Checks a scheme's signature against several secrets, within a time window.
#[derive(Debug, Clone)]
pub struct SignatureVerifier {
    scheme: SignatureScheme,
    secrets: Vec<Secret>,
    window_secs: u64,
}

impl SignatureVerifier {
    /// Verify `scheme` signatures made with any of `secrets` (empty secrets are dropped), with
    /// the default ±300 s window.
    #[must_use]
    pub fn new(scheme: SignatureScheme, secrets: impl IntoIterator<Item = Secret>) -> Self {
        Self {
            scheme,
            secrets: secrets.into_iter().filter(|s| !s.0.is_empty()).collect(),
            window_secs: DEFAULT_WINDOW_SECS,
        }
    }

    /// Accept timestamps at most `secs` seconds from now, either way.
    #[must_use]
    pub fn with_window(mut self, secs: u64) -> Self {
        self.window_secs = secs;
        self
    }

    /// The scheme verified.
    #[must_use]
    pub fn scheme(&self) -> &SignatureScheme {
        &self.scheme
    }

    /// Check the request's signature; `now` is the current unix time in seconds. Returns the
    /// signed timestamp, if the scheme has one (the generic dedup key uses it).
    ///
    /// The timestamp window is checked before the MAC (a replay costs no HMAC). The MAC is
    /// computed for every secret and each compared with `ConstantTimeEq`, the results OR-ed as
    /// `subtle::Choice`, so timing says neither how much of the signature matched nor which
    /// secret did.
    ///
    /// # Errors
    /// [`AuthError::MissingSignature`], [`AuthError::MissingTimestamp`],
    /// [`AuthError::InvalidTimestamp`], [`AuthError::StaleTimestamp`] or
    /// [`AuthError::BadSignature`].
    pub fn verify<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: i64,
    ) -> Result<Option<i64>, AuthError> {
        let signature = headers
            .header(&self.scheme.signature_header)
            .ok_or(AuthError::MissingSignature)?;
        let timestamp = match &self.scheme.timestamp_header {
            None => None,
            Some(name) => {
                let text = headers.header(name).ok_or(AuthError::MissingTimestamp)?;
                let ts: i64 = text.parse().map_err(|_| AuthError::InvalidTimestamp)?;
                if now.abs_diff(ts) > self.window_secs {
                    return Err(AuthError::StaleTimestamp);
                }
                Some((text, ts))
            }
        };
        let given = strip_prefix_ignore_case(signature.trim(), &self.scheme.prefix)
            .and_then(|hex_digits| hex::decode(hex_digits).ok())
            .filter(|bytes| bytes.len() == 32)
            .ok_or(AuthError::BadSignature)?;
        let mut matched = Choice::from(0);
        for secret in &self.secrets {
            let expected = self
                .scheme
                .mac(&secret.0, timestamp.map(|(text, _)| text), body);
            matched |= expected.as_slice().ct_eq(&given);
        }
        if bool::from(matched) {
            Ok(timestamp.map(|(_, ts)| ts))
        } else {
            Err(AuthError::BadSignature)
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// What a request proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verified {
    /// The signed timestamp, when a signature with a timestamp was verified.
    pub signed_timestamp: Option<i64>,
}

/// The authentication of one endpoint: credentials (bearer tokens and/or basic auth; any one
/// matching passes) and/or a signature. When both are configured, both are required. With
/// neither, [`Authenticator::is_open`] is true and every request passes: the server decides
/// whether to allow that.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    /// SHA-256 of each accepted bearer token.
    bearer: Vec<[u8; 32]>,
    /// SHA-256 of each accepted `base64(user:password)`.
    basic: Vec<[u8; 32]>,
    signature: Option<SignatureVerifier>,
}

impl Authenticator {
    /// No requirement yet; add some with the `with_*` methods.
    #[must_use]
    pub fn open() -> Self {
        Self::default()
    }

    /// Accept `Authorization: Bearer <token>` for each of `tokens` (empty ones are dropped).
    #[must_use]
    pub fn with_bearer_tokens(mut self, tokens: impl IntoIterator<Item = Secret>) -> Self {
        self.bearer.extend(
            tokens
                .into_iter()
                .filter(|t| !t.0.is_empty())
                .map(|t| digest(&t.0)),
        );
        self
    }

    /// Accept `Authorization: Basic` for `username` with each of `passwords` (empty ones are
    /// dropped).
    #[must_use]
    pub fn with_basic_auth(
        mut self,
        username: &str,
        passwords: impl IntoIterator<Item = Secret>,
    ) -> Self {
        self.basic
            .extend(passwords.into_iter().filter(|p| !p.0.is_empty()).map(|p| {
                let mut plain = username.as_bytes().to_vec();
                plain.push(b':');
                plain.extend_from_slice(&p.0);
                // Clients send the standard padded encoding (RFC 7617), so comparing
                // encodings is comparing credentials, without decoding attacker input.
                digest(base64_encode(&plain).as_bytes())
            }));
        self
    }

    /// Require a valid signature too.
    #[must_use]
    pub fn with_signature(mut self, verifier: SignatureVerifier) -> Self {
        self.signature = Some(verifier);
        self
    }

    /// True when nothing is required: every request passes.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.bearer.is_empty() && self.basic.is_empty() && self.signature.is_none()
    }

    /// Check a request: credentials first, then the signature. `now` is the current unix time
    /// in seconds.
    ///
    /// # Errors
    /// The first requirement that fails; see [`AuthError`].
    pub fn check<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, AuthError> {
        if !(self.bearer.is_empty() && self.basic.is_empty()) {
            self.check_credentials(headers.header("Authorization"))?;
        }
        let signed_timestamp = match &self.signature {
            Some(verifier) => verifier.verify(headers, body, now)?,
            None => None,
        };
        Ok(Verified { signed_timestamp })
    }

    /// The `Authorization` header against the configured tokens or credentials. The scheme
    /// name is case-insensitive (RFC 9110 §11.1). The presented value is hashed and its digest
    /// compared with every configured digest by `ConstantTimeEq`, OR-ed without an early exit:
    /// neither its length nor which entry matched shows in the timing.
    fn check_credentials(&self, authorization: Option<&str>) -> Result<(), AuthError> {
        let value = authorization.ok_or(AuthError::Unauthorized)?.trim();
        let (scheme, rest) = value.split_once(' ').ok_or(AuthError::Unauthorized)?;
        let presented = rest.trim();
        if presented.is_empty() {
            return Err(AuthError::Unauthorized);
        }
        let candidates = if scheme.eq_ignore_ascii_case("bearer") {
            &self.bearer
        } else if scheme.eq_ignore_ascii_case("basic") {
            &self.basic
        } else {
            return Err(AuthError::Unauthorized);
        };
        let presented = digest(presented.as_bytes());
        let mut matched = Choice::from(0);
        for candidate in candidates {
            matched |= candidate.ct_eq(&presented);
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(AuthError::Unauthorized)
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Standard base64 with padding (RFC 4648 §4), for basic auth credentials.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_763_900_000;
    const BODY: &[u8] = br#"{"runbook":"sse-availability","params":{"instance":"api-1"}}"#;

    fn secret(s: &str) -> Secret {
        Secret::new(s)
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn signed(scheme: &SignatureScheme, key: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
        let mut h = vec![(
            scheme.signature_header.clone(),
            scheme.sign(key.as_bytes(), ts, body),
        )];
        if let Some(name) = &scheme.timestamp_header {
            h.push((name.clone(), ts.to_string()));
        }
        h
    }

    fn generic(secrets: &[&str]) -> SignatureVerifier {
        SignatureVerifier::new(
            SignatureScheme::runbook(),
            secrets.iter().map(|s| secret(s)),
        )
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1, 2 and 6 (key longer than the block size) of RFC 4231, HMAC-SHA-256.
        let mac = |key: &[u8], data: &[u8]| {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
            m.update(data);
            hex::encode(m.finalize().into_bytes())
        };
        assert_eq!(
            mac(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            mac(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            mac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn runbook_scheme_signs_timestamp_dot_body() {
        let scheme = SignatureScheme::runbook();
        let value = scheme.sign(b"k", 1_700_000_000, b"{}");
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(b"k").unwrap();
        m.update(b"1700000000.{}");
        assert_eq!(
            value,
            format!("sha256={}", hex::encode(m.finalize().into_bytes()))
        );
    }

    #[test]
    fn grafana_scheme_signs_timestamp_colon_body_or_body_alone() {
        let with_ts =
            SignatureScheme::grafana(None, Some(SignatureScheme::GRAFANA_TIMESTAMP_HEADER));
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(b"g").unwrap();
        m.update(b"1700000000:{\"a\":1}");
        assert_eq!(
            with_ts.sign(b"g", 1_700_000_000, br#"{"a":1}"#),
            hex::encode(m.finalize().into_bytes())
        );
        let body_only = SignatureScheme::grafana(None, None);
        assert_eq!(body_only.signature_header, "X-Grafana-Alert-Signature");
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(b"g").unwrap();
        m.update(br#"{"a":1}"#);
        assert_eq!(
            body_only.sign(b"g", 5, br#"{"a":1}"#),
            hex::encode(m.finalize().into_bytes())
        );
        // Verified end to end, with and without a timestamp.
        let v = SignatureVerifier::new(with_ts.clone(), [secret("g")]);
        let h = signed(&with_ts, "g", NOW, BODY);
        assert_eq!(v.verify(&h[..], BODY, NOW), Ok(Some(NOW)));
        let v = SignatureVerifier::new(body_only.clone(), [secret("g")]);
        let h = signed(&body_only, "g", 0, BODY);
        assert_eq!(
            v.verify(&h[..], BODY, NOW),
            Ok(None),
            "no timestamp: no window"
        );
    }

    /// The headers are Grafana's `hmacConfig.header` and `timestampHeader`, whatever they are
    /// named; without a timestamp header the body alone is what is signed.
    #[test]
    fn grafana_headers_as_configured() {
        let custom = SignatureScheme::grafana(Some("X-Hook-Sig"), None);
        let v = SignatureVerifier::new(custom.clone(), [secret("g")]);
        let h = signed(&custom, "g", NOW, BODY);
        assert_eq!(h, headers(&[("X-Hook-Sig", &h[0].1)]), "no timestamp sent");
        assert_eq!(v.verify(&h[..], BODY, NOW), Ok(None));
        // Any time later: a body-only signature has no window.
        assert_eq!(v.verify(&h[..], BODY, NOW + 86_400), Ok(None));
        let mut body = BODY.to_vec();
        body[3] ^= 0x01;
        assert_eq!(v.verify(&h[..], &body, NOW), Err(AuthError::BadSignature));
        // The same signature in Grafana's default header is not looked at.
        let default = headers(&[(SignatureScheme::GRAFANA_SIGNATURE_HEADER, &h[0].1)]);
        assert_eq!(
            v.verify(&default[..], BODY, NOW),
            Err(AuthError::MissingSignature)
        );
        // A sender that signs `timestamp:body` does not pass a body-only verifier.
        let with_ts = SignatureScheme::grafana(Some("X-Hook-Sig"), Some("X-Hook-Time"));
        let h = signed(&with_ts, "g", NOW, BODY);
        assert_eq!(v.verify(&h[..], BODY, NOW), Err(AuthError::BadSignature));
        // And the other way round: a body-only sender, to a verifier that wants the time.
        let v = SignatureVerifier::new(with_ts, [secret("g")]);
        let h = signed(&custom, "g", NOW, BODY);
        assert_eq!(
            v.verify(&h[..], BODY, NOW),
            Err(AuthError::MissingTimestamp)
        );
    }

    #[test]
    fn valid_signature_passes_and_returns_the_timestamp() {
        let h = signed(&SignatureScheme::runbook(), "s3cret", NOW, BODY);
        assert_eq!(
            generic(&["s3cret"]).verify(&h[..], BODY, NOW),
            Ok(Some(NOW))
        );
        // Header names are case-insensitive.
        let lower: Vec<_> = h
            .iter()
            .map(|(n, v)| (n.to_lowercase(), v.clone()))
            .collect();
        assert_eq!(
            generic(&["s3cret"]).verify(&lower[..], BODY, NOW),
            Ok(Some(NOW))
        );
    }

    #[test]
    fn one_flipped_byte_fails() {
        let v = generic(&["s3cret"]);
        let h = signed(&SignatureScheme::runbook(), "s3cret", NOW, BODY);
        // In the body.
        let mut body = BODY.to_vec();
        body[10] ^= 0x01;
        assert_eq!(v.verify(&h[..], &body, NOW), Err(AuthError::BadSignature));
        // In the signature: every hex digit position.
        let sig = h[0].1.clone();
        for i in "sha256=".len()..sig.len() {
            let mut bytes = sig.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let mut h2 = h.clone();
            h2[0].1 = String::from_utf8(bytes).unwrap();
            assert_eq!(
                v.verify(&h2[..], BODY, NOW),
                Err(AuthError::BadSignature),
                "digit {i}"
            );
        }
        // In the timestamp (still within the window, but not what was signed).
        let mut h3 = h.clone();
        h3[1].1 = (NOW + 1).to_string();
        assert_eq!(v.verify(&h3[..], BODY, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn timestamp_window() {
        let v = generic(&["k"]);
        let scheme = SignatureScheme::runbook();
        let at = |ts: i64| v.verify(&signed(&scheme, "k", ts, BODY)[..], BODY, NOW);
        assert_eq!(at(NOW - 300), Ok(Some(NOW - 300)));
        assert_eq!(at(NOW + 300), Ok(Some(NOW + 300)));
        assert_eq!(at(NOW - 301), Err(AuthError::StaleTimestamp), "stale");
        assert_eq!(at(NOW + 301), Err(AuthError::StaleTimestamp), "future");
        assert_eq!(at(i64::MIN), Err(AuthError::StaleTimestamp));
        assert_eq!(at(i64::MAX), Err(AuthError::StaleTimestamp));
        // A configurable window.
        let narrow = generic(&["k"]).with_window(10);
        let h = signed(&scheme, "k", NOW - 11, BODY);
        assert_eq!(
            narrow.verify(&h[..], BODY, NOW),
            Err(AuthError::StaleTimestamp)
        );
        // Not a number.
        for bad in ["", "soon", "1.5", "0x10", "99999999999999999999"] {
            let mut h = signed(&scheme, "k", NOW, BODY);
            h[1].1 = bad.to_owned();
            assert_eq!(
                v.verify(&h[..], BODY, NOW),
                Err(AuthError::InvalidTimestamp),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rotated_secrets_any_matches() {
        let scheme = SignatureScheme::runbook();
        let v = generic(&["old", "new"]);
        for key in ["old", "new"] {
            let h = signed(&scheme, key, NOW, BODY);
            assert_eq!(v.verify(&h[..], BODY, NOW), Ok(Some(NOW)), "{key}");
        }
        let h = signed(&scheme, "retired", NOW, BODY);
        assert_eq!(v.verify(&h[..], BODY, NOW), Err(AuthError::BadSignature));
        // Empty secrets are dropped: an empty key signs nothing valid.
        let v = generic(&[""]);
        let h = signed(&scheme, "", NOW, BODY);
        assert_eq!(v.verify(&h[..], BODY, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn missing_headers() {
        let v = generic(&["k"]);
        let h = signed(&SignatureScheme::runbook(), "k", NOW, BODY);
        assert_eq!(
            v.verify(&h[..1], BODY, NOW),
            Err(AuthError::MissingTimestamp),
            "no timestamp"
        );
        assert_eq!(
            v.verify(&h[1..], BODY, NOW),
            Err(AuthError::MissingSignature),
            "no signature"
        );
        let none: &[(String, String)] = &[];
        assert_eq!(v.verify(none, BODY, NOW), Err(AuthError::MissingSignature));
    }

    #[test]
    fn wrong_signature_scheme_or_shape() {
        let v = generic(&["k"]);
        let h = signed(&SignatureScheme::runbook(), "k", NOW, BODY);
        let hex_digits = h[0].1.trim_start_matches("sha256=").to_owned();
        let cases = [
            hex_digits.clone(),                      // no prefix
            format!("sha1={hex_digits}"),            // another algorithm
            format!("sha256={}", &hex_digits[..62]), // short
            format!("sha256={hex_digits}00"),        // long
            "sha256=zz".to_owned(),                  // not hex
            String::new(),
        ];
        for value in cases {
            let mut h2 = h.clone();
            h2[0].1.clone_from(&value);
            assert_eq!(
                v.verify(&h2[..], BODY, NOW),
                Err(AuthError::BadSignature),
                "{value:?}"
            );
        }
        // The prefix is case-insensitive, the hex digits may be upper case.
        let mut h2 = h.clone();
        h2[0].1 = format!("SHA256={}", hex_digits.to_uppercase());
        assert_eq!(v.verify(&h2[..], BODY, NOW), Ok(Some(NOW)));
    }

    fn bearer() -> Authenticator {
        Authenticator::open().with_bearer_tokens([secret("tok-new"), secret("tok-old")])
    }

    #[test]
    fn bearer_tokens() {
        let a = bearer();
        assert!(!a.is_open());
        let check = |value: &str| a.check(&[("Authorization", value)][..], BODY, NOW);
        assert_eq!(check("Bearer tok-new"), Ok(Verified::default()));
        assert_eq!(check("Bearer tok-old"), Ok(Verified::default()), "rotation");
        assert_eq!(
            check("bearer tok-new"),
            Ok(Verified::default()),
            "scheme case"
        );
        assert_eq!(check("BEARER  tok-new "), Ok(Verified::default()));
        for wrong in [
            "Bearer tok-ne",
            "Bearer tok-new2",
            "Bearer TOK-NEW",
            "Bearer ",
            "Bearer",
            "",
            "tok-new",
            "Token tok-new",
            "Basic tok-new",
        ] {
            assert_eq!(check(wrong), Err(AuthError::Unauthorized), "{wrong:?}");
        }
        let none: &[(&str, &str)] = &[];
        assert_eq!(a.check(none, BODY, NOW), Err(AuthError::Unauthorized));
        // An empty token is never configured, so "Bearer " with nothing can never pass.
        let empty = Authenticator::open().with_bearer_tokens([secret("")]);
        assert!(empty.is_open());
    }

    #[test]
    fn basic_auth() {
        // RFC 7617's example.
        assert_eq!(
            base64_encode(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");

        let a = Authenticator::open().with_basic_auth("Aladdin", [secret("open sesame")]);
        let check = |value: &str| a.check(&[("authorization", value)][..], BODY, NOW);
        assert_eq!(
            check("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Ok(Verified::default())
        );
        assert_eq!(
            check("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Ok(Verified::default())
        );
        assert_eq!(
            check(&format!("Basic {}", base64_encode(b"Aladdin:open sesamE"))),
            Err(AuthError::Unauthorized)
        );
        assert_eq!(
            check(&format!("Basic {}", base64_encode(b"aladdin:open sesame"))),
            Err(AuthError::Unauthorized)
        );
        assert_eq!(check("Bearer open sesame"), Err(AuthError::Unauthorized));
        // Bearer and basic together: either passes.
        let both = bearer().with_basic_auth("am", [secret("pw")]);
        let ok = |v: &str| both.check(&[("Authorization", v)][..], BODY, NOW).is_ok();
        assert!(ok("Bearer tok-old"));
        assert!(ok(&format!("Basic {}", base64_encode(b"am:pw"))));
        assert!(!ok(&format!("Basic {}", base64_encode(b"am:tok-old"))));
    }

    #[test]
    fn credentials_and_signature_both_required() {
        let scheme = SignatureScheme::runbook();
        let a = bearer().with_signature(generic(&["k"]));
        let mut h = signed(&scheme, "k", NOW, BODY);
        assert_eq!(a.check(&h[..], BODY, NOW), Err(AuthError::Unauthorized));
        h.push(("Authorization".into(), "Bearer tok-new".into()));
        assert_eq!(
            a.check(&h[..], BODY, NOW),
            Ok(Verified {
                signed_timestamp: Some(NOW)
            })
        );
        let only_token = headers(&[("Authorization", "Bearer tok-new")]);
        assert_eq!(
            a.check(&only_token[..], BODY, NOW),
            Err(AuthError::MissingSignature)
        );
        // Open authenticator lets anything through.
        assert!(Authenticator::open().is_open());
        assert_eq!(
            Authenticator::open().check(&only_token[..], b"", 0),
            Ok(Verified::default())
        );
    }

    #[test]
    fn errors_say_little() {
        let all = [
            AuthError::Unauthorized,
            AuthError::MissingSignature,
            AuthError::MissingTimestamp,
            AuthError::BadSignature,
            AuthError::InvalidTimestamp,
            AuthError::StaleTimestamp,
        ];
        let texts: Vec<_> = all.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "unauthorized",
                "missing signature",
                "missing timestamp",
                "bad signature",
                "invalid timestamp",
                "stale timestamp"
            ]
        );
        assert_eq!(AuthError::StaleTimestamp.code(), "stale-timestamp");
        assert_eq!(AuthError::MissingTimestamp.code(), "missing-timestamp");
        assert_eq!(format!("{:?}", secret("hunter2")), "Secret(***)");
    }

    #[test]
    fn secret_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };

        let one = read_secret_file(&write("token", "tok-new\n", 0o600)).unwrap();
        assert_eq!(one.secrets, [secret("tok-new")], "trailing newline trimmed");
        assert_eq!(one.warning, None);

        let crlf = read_secret_file(&write("crlf", "  tok \r\n", 0o400)).unwrap();
        assert_eq!(crlf.secrets, [secret("tok")]);

        let rotation = read_secret_file(&write("rot", "new\n\nold\n", 0o640)).unwrap();
        assert_eq!(rotation.secrets, [secret("new"), secret("old")]);

        let open = read_secret_file(&write("open", "t", 0o644)).unwrap();
        assert!(
            open.warning
                .unwrap()
                .contains("readable by every user (mode 0644)")
        );

        let err = read_secret_file(&write("ww", "t", 0o666)).unwrap_err();
        assert!(
            matches!(err, SecretFileError::WorldWritable { mode: 0o666, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("`chmod 600` it"));

        let err = read_secret_file(&write("empty", " \n\n", 0o600)).unwrap_err();
        assert!(matches!(err, SecretFileError::Empty { .. }), "{err}");

        let err = read_secret_file(&dir.path().join("missing")).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read secret file `"),
            "{err}"
        );

        // A file's secrets feed an authenticator directly.
        let a = Authenticator::open().with_bearer_tokens(rotation.secrets);
        assert!(
            a.check(&[("Authorization", "Bearer old")][..], b"", 0)
                .is_ok()
        );
    }

    #[test]
    fn axum_header_map() {
        use axum::http::{HeaderMap, HeaderValue};
        let scheme = SignatureScheme::runbook();
        let mut map = HeaderMap::new();
        for (name, value) in signed(&scheme, "k", NOW, BODY) {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        map.insert("authorization", HeaderValue::from_static("Bearer tok-old"));
        let a = bearer().with_signature(generic(&["k"]));
        assert_eq!(
            a.check(&map, BODY, NOW).unwrap().signed_timestamp,
            Some(NOW)
        );
        assert_eq!(map.header("not a header name"), None);
        map.insert(
            "authorization",
            HeaderValue::from_bytes(b"Bearer \xfftok").unwrap(),
        );
        assert_eq!(a.check(&map, BODY, NOW), Err(AuthError::Unauthorized));
    }

    proptest::proptest! {
        #[test]
        fn random_headers_never_panic_nor_pass(
            auth in ".{0,80}",
            sig in ".{0,80}",
            ts in ".{0,24}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            now in proptest::prelude::any::<i64>(),
        ) {
            let a = bearer()
                .with_basic_auth("u", [secret("p")])
                .with_signature(generic(&["k"]));
            let h = headers(&[
                ("Authorization", auth.as_str()),
                ("X-Runbook-Signature", sig.as_str()),
                ("X-Runbook-Timestamp", ts.as_str()),
            ]);
            proptest::prop_assert!(a.check(&h[..], &body, now).is_err());
        }
    }
}
