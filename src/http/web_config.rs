//! The web configuration file (`--web.config.file`) in the format of the
//! Prometheus exporter toolkit: TLS, mutual TLS and basic auth. Everything is
//! read and checked before the exporter listens.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::http::auth_throttle::{Busy, Throttle};

/// The validated web configuration; the default serves plain HTTP to anyone.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// TLS settings, when `tls_server_config` is given.
    pub tls: Option<Arc<ServerConfig>>,
    /// Users allowed in, when `basic_auth_users` is given.
    pub auth: Option<Arc<BasicAuth>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "web config")]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<serde_norway::Value>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "tls_server_config")]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    // Toolkit keys this exporter does not implement: named in the error.
    cert: Option<serde_norway::Value>,
    key: Option<serde_norway::Value>,
    cipher_suites: Option<serde_norway::Value>,
    curve_preferences: Option<serde_norway::Value>,
    prefer_server_cipher_suites: Option<serde_norway::Value>,
    client_allowed_sans: Option<serde_norway::Value>,
}

/// Client certificate policies, by the toolkit's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    None,
    VerifyIfGiven,
    RequireAndVerify,
}

impl WebConfig {
    /// Reads and validates the file at `path`; relative certificate paths are
    /// taken from the file's directory, as the toolkit does.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read web config file {}", path.display()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::parse(&path.display().to_string(), base, &text)
    }

    /// Validates web config text; `origin` names it in errors and `base` is
    /// where relative file names point.
    pub fn parse(origin: &str, base: &Path, text: &str) -> anyhow::Result<Self> {
        let raw = parse_raw(origin, text)?;
        let at = |key: &str| format!("web config file {origin}, key `{key}`");
        if raw.http_server_config.is_some() {
            bail!(
                "{}: not supported by this exporter (it serves HTTP/1.1 only)",
                at("http_server_config")
            );
        }
        let tls = match raw.tls_server_config {
            Some(t) => Some(Arc::new(tls_config(t, base, &at)?)),
            None => None,
        };
        let auth = match raw.basic_auth_users {
            Some(users) if !users.is_empty() => Some(Arc::new(BasicAuth::new(users, &at)?)),
            _ => None,
        };
        Ok(Self { tls, auth })
    }
}

/// The file's structure alone: unknown keys and wrong types are errors with
/// the line where the YAML parser knows it.
fn parse_raw(origin: &str, text: &str) -> anyhow::Result<RawWebConfig> {
    if text.trim().is_empty() {
        return Ok(RawWebConfig::default());
    }
    let raw: Option<RawWebConfig> = serde_norway::from_str(text)
        .map_err(|e| anyhow!("web config file {origin}: {}", e.to_string().trim_end()))?;
    Ok(raw.unwrap_or_default())
}

fn tls_config(t: RawTls, base: &Path, at: &dyn Fn(&str) -> String) -> anyhow::Result<ServerConfig> {
    refuse_unsupported(&t, at)?;
    let cert_path = tls_path(base, "cert_file", &t.cert_file, at)?;
    let key_path = tls_path(base, "key_file", &t.key_file, at)?;
    let certs = read_certs(&cert_path).with_context(|| at(&tls_key("cert_file")))?;
    let key = read_key(&key_path).with_context(|| at(&tls_key("key_file")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = client_verifier(&t, base, &provider, at)?;
    let versions = protocol_versions(&t, at)?;
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .context("TLS versions")?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).with_context(|| {
        format!(
            "{}: {} and {} do not make a usable certificate and key pair",
            at("tls_server_config"),
            cert_path.display(),
            key_path.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// `tls_server_config.KEY`, as errors name it.
fn tls_key(key: &str) -> String {
    format!("tls_server_config.{key}")
}

/// The toolkit's keys this exporter does not implement: an error rather
/// than a setting silently ignored.
fn refuse_unsupported(t: &RawTls, at: &dyn Fn(&str) -> String) -> anyhow::Result<()> {
    let unsupported = [
        ("cert", t.cert.is_some()),
        ("key", t.key.is_some()),
        ("cipher_suites", t.cipher_suites.is_some()),
        ("curve_preferences", t.curve_preferences.is_some()),
        (
            "prefer_server_cipher_suites",
            t.prefer_server_cipher_suites.is_some(),
        ),
        ("client_allowed_sans", t.client_allowed_sans.is_some()),
    ];
    match unsupported.iter().find(|(_, set)| *set) {
        Some((key, _)) => bail!("{}: not supported by this exporter", at(&tls_key(key))),
        None => Ok(()),
    }
}

/// The file at `key`, relative to the web config's directory `base`.
fn tls_path(
    base: &Path,
    key: &str,
    value: &Option<String>,
    at: &dyn Fn(&str) -> String,
) -> anyhow::Result<PathBuf> {
    match value.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => Ok(base.join(p)),
        _ => bail!("{}: missing", at(&tls_key(key))),
    }
}

/// `client_auth_type`, by the toolkit's names.
fn client_auth(t: &RawTls, at: &dyn Fn(&str) -> String) -> anyhow::Result<ClientAuth> {
    Ok(match t.client_auth_type.as_deref().map(str::trim) {
        None | Some("") | Some("NoClientCert") => ClientAuth::None,
        Some("VerifyClientCertIfGiven") => ClientAuth::VerifyIfGiven,
        Some("RequireAndVerifyClientCert") => ClientAuth::RequireAndVerify,
        Some(other @ ("RequestClientCert" | "RequireAnyClientCert")) => bail!(
            "{}: {other:?} (a client certificate that is not verified) is not supported; \
             use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert",
            at(&tls_key("client_auth_type"))
        ),
        Some(other) => bail!(
            "{}: {other:?} is not one of NoClientCert, VerifyClientCertIfGiven, \
             RequireAndVerifyClientCert",
            at(&tls_key("client_auth_type"))
        ),
    })
}

/// The verifier of client certificates against `client_ca_file`, where
/// `client_auth_type` asks for one.
fn client_verifier(
    t: &RawTls,
    base: &Path,
    provider: &Arc<rustls::crypto::CryptoProvider>,
    at: &dyn Fn(&str) -> String,
) -> anyhow::Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>> {
    let key = tls_key("client_ca_file");
    let policy = match (client_auth(t, at)?, &t.client_ca_file) {
        (ClientAuth::None, Some(_)) => bail!(
            "{}: client CAs are set but client_auth_type is NoClientCert; \
             set client_auth_type to RequireAndVerifyClientCert",
            at(&key)
        ),
        (ClientAuth::None, None) => return Ok(None),
        (_, None) => bail!(
            "{}: client_auth_type {:?} needs client_ca_file",
            at(&key),
            t.client_auth_type.as_deref().unwrap_or_default()
        ),
        (policy, Some(_)) => policy,
    };
    let ca_path = tls_path(base, "client_ca_file", &t.client_ca_file, at)?;
    let mut roots = RootCertStore::empty();
    for cert in read_certs(&ca_path).with_context(|| at(&key))? {
        roots.add(cert).with_context(|| {
            format!(
                "{}: {}: not a usable CA certificate",
                at(&key),
                ca_path.display()
            )
        })?;
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if policy == ClientAuth::VerifyIfGiven {
        builder = builder.allow_unauthenticated();
    }
    Ok(Some(builder.build().with_context(|| at(&key))?))
}

/// The TLS versions from `min_version` to `max_version` (1.2 and 1.3 by
/// default).
fn protocol_versions(
    t: &RawTls,
    at: &dyn Fn(&str) -> String,
) -> anyhow::Result<Vec<&'static rustls::SupportedProtocolVersion>> {
    let min = parse_version(t.min_version.as_deref(), "TLS12")
        .with_context(|| at(&tls_key("min_version")))?;
    let max = parse_version(t.max_version.as_deref(), "TLS13")
        .with_context(|| at(&tls_key("max_version")))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, v)| v)
            .collect();
    if versions.is_empty() {
        bail!("{}: is below min_version", at(&tls_key("max_version")));
    }
    Ok(versions)
}

fn parse_version(value: Option<&str>, default: &str) -> anyhow::Result<u8> {
    match value.map(str::trim).unwrap_or(default) {
        "" => parse_version(None, default),
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        v @ ("TLS10" | "TLS11") => bail!("{v:?} is not supported: TLS12 or TLS13"),
        v => bail!("{v:?} is not a TLS version: TLS12 or TLS13"),
    }
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate in the file", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| anyhow!("{}: no usable PEM private key: {e}", path.display()))
}

/// Basic auth against bcrypt hashes. A password that verified once is
/// remembered (as a salted SHA-256, per user and hash, as the exporter
/// toolkit does) so that later scrapes skip the deliberately slow bcrypt;
/// other attempts pay it in the turn [`Throttle`] gives their address.
/// Passwords of 72 bytes or more never match: bcrypt would compare their
/// first 72 bytes only.
pub struct BasicAuth {
    users: Vec<(String, String)>,
    salt: [u8; 32],
    verified: Mutex<HashMap<(String, String), [u8; 32]>>,
    throttle: Throttle,
}

/// What a password check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A user and its password.
    Allowed,
    /// Anything else.
    Denied,
    /// Not checked: the client has too many checks waiting.
    Busy,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("BasicAuth").field("users", &names).finish()
    }
}

impl BasicAuth {
    fn new(users: BTreeMap<String, String>, at: &dyn Fn(&str) -> String) -> anyhow::Result<Self> {
        let mut checked = Vec::new();
        for (user, hash) in users {
            let key = at(&format!("basic_auth_users.{user}"));
            if user.is_empty() || user.contains(':') {
                bail!("{key}: a user name must be non-empty and without ':'");
            }
            let hash = hash.trim().to_string();
            if !hash.starts_with("$2") {
                bail!("{key}: not a bcrypt hash (it should start with $2a$, $2b$ or $2y$)");
            }
            hash.parse::<bcrypt::HashParts>()
                .map_err(|e| anyhow!("{key}: not a bcrypt hash: {e}"))?;
            checked.push((user, hash));
        }
        let mut salt = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
            .map_err(|_| anyhow!("no random numbers from the system"))?;
        Ok(Self {
            users: checked,
            salt,
            verified: Mutex::default(),
            throttle: Throttle::default(),
        })
    }

    /// Whether an `Authorization` header value from `peer` names a user
    /// and its password.
    pub async fn check(&self, peer: Option<IpAddr>, header: Option<&[u8]>) -> Verdict {
        let Some((user, password)) = header.and_then(decode_basic) else {
            return Verdict::Denied;
        };
        // Compare every name, so the time taken does not tell which exist.
        let mut found = None;
        for (name, hash) in &self.users {
            if bool::from(name.as_bytes().ct_eq(user.as_bytes())) {
                found = Some((name, hash));
            }
        }
        let digest = self.digest(&user, &password);
        if let Some((name, hash)) = found {
            let cached = self
                .verified
                .lock()
                .ok()
                .and_then(|m| m.get(&(name.clone(), hash.clone())).copied());
            if cached.is_some_and(|c| bool::from(c.ct_eq(&digest))) {
                return Verdict::Allowed;
            }
        }
        // An unknown user costs one bcrypt as well, against the first hash.
        let Some(hash) = found.map(|(_, h)| h).or(self.users.first().map(|(_, h)| h)) else {
            return Verdict::Denied;
        };
        let (pw, h) = (password, hash.clone());
        // 72 bytes or more: an error, so no match (not a match on a prefix).
        let verify = async move {
            tokio::task::spawn_blocking(move || bcrypt::non_truncating_verify(pw, &h))
                .await
                .is_ok_and(|r| r.unwrap_or(false))
        };
        match (self.throttle.check(peer, verify).await, found) {
            (Err(Busy), _) => Verdict::Busy,
            (Ok(true), Some((name, hash))) => {
                if let Ok(mut m) = self.verified.lock() {
                    m.insert((name.clone(), hash.clone()), digest);
                }
                Verdict::Allowed
            }
            _ => Verdict::Denied,
        }
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(password.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

/// `Basic base64(user:password)` into its parts.
fn decode_basic(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<WebConfig> {
        WebConfig::parse("web.yml", Path::new("/nonexistent"), text)
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    fn basic(user: &str, password: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
        .into_bytes()
    }

    #[test]
    fn empty_file_is_plain_http_without_auth() {
        let c = parse("").unwrap();
        assert!(c.tls.is_none() && c.auth.is_none());
        let c = parse("# nothing\n").unwrap();
        assert!(c.tls.is_none() && c.auth.is_none());
    }

    #[test]
    fn example_file_has_only_known_keys() {
        let text = include_str!("../../web-config.example.yml");
        let raw = parse_raw("web-config.example.yml", text).unwrap();
        assert!(raw.tls_server_config.is_some());
        let users = raw.basic_auth_users.unwrap();
        assert!(bcrypt::verify("change-me", &users["prometheus"]).unwrap());
    }

    #[test]
    fn unknown_keys_name_file_key_and_line() {
        let e = err("basic_auth_users: {}\nbasic_auth_user:\n  a: b\n");
        assert!(e.contains("web.yml"), "{e}");
        assert!(e.contains("basic_auth_user"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = err("tls_server_config:\n  cert_file: a\n  certfile: b\n");
        assert!(e.contains("certfile") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn unsupported_toolkit_keys_are_named() {
        let e = err("http_server_config:\n  http2: false\n");
        assert!(e.contains("key `http_server_config`"), "{e}");
        let e = err("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: []\n");
        assert!(e.contains("tls_server_config.cipher_suites"), "{e}");
    }

    #[test]
    fn tls_problems_are_named() {
        let e = err("tls_server_config:\n  key_file: k.pem\n");
        assert!(
            e.contains("tls_server_config.cert_file") && e.contains("missing"),
            "{e}"
        );
        let e = err("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n");
        assert!(e.contains("tls_server_config.cert_file"), "{e}");
        assert!(e.contains("/nonexistent/c.pem"), "{e}");
        assert!(parse_version(Some("TLS11"), "TLS12").is_err());
        assert_eq!(parse_version(None, "TLS12").unwrap(), 12);
        assert_eq!(parse_version(Some("TLS13"), "TLS12").unwrap(), 13);
    }

    #[test]
    fn hashes_must_be_bcrypt() {
        let e = err("basic_auth_users:\n  alice: secret\n");
        assert!(e.contains("key `basic_auth_users.alice`"), "{e}");
        assert!(e.contains("bcrypt"), "{e}");
        let e = err("basic_auth_users:\n  alice: $2b$10$tooshort\n");
        assert!(e.contains("basic_auth_users.alice"), "{e}");
    }

    #[tokio::test]
    async fn basic_auth_checks_and_remembers_good_passwords() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let c = parse(&format!(
            "basic_auth_users:\n  alice: '{hash}'\n  bob: '{hash}'\n"
        ))
        .unwrap();
        let auth = c.auth.unwrap();
        let check = |h: Option<&[u8]>| {
            let auth = Arc::clone(&auth);
            let h = h.map(<[u8]>::to_vec);
            async move { auth.check(None, h.as_deref()).await == Verdict::Allowed }
        };
        assert!(!check(None).await);
        assert!(!check(Some(b"Bearer x")).await);
        assert!(!check(Some(b"Basic !!!")).await);
        assert!(!check(Some(&basic("alice", "wrong"))).await);
        assert!(!check(Some(&basic("carol", "s3cret"))).await);
        assert!(auth.verified.lock().unwrap().is_empty());
        assert!(check(Some(&basic("alice", "s3cret"))).await);
        assert_eq!(auth.verified.lock().unwrap().len(), 1);
        // Remembered: the second check does not wait for bcrypt (nor for
        // the failures' back-off above).
        let t = std::time::Instant::now();
        assert!(check(Some(&basic("alice", "s3cret"))).await);
        assert!(t.elapsed() < std::time::Duration::from_millis(50));
    }

    #[tokio::test]
    async fn passwords_of_72_bytes_or_more_never_match() {
        let long = "x".repeat(72);
        let hash = bcrypt::hash(&long[..71], 4).unwrap();
        let auth = parse(&format!("basic_auth_users:\n  alice: '{hash}'\n"))
            .unwrap()
            .auth
            .unwrap();
        let (over, at) = (basic("alice", &long), basic("alice", &long[..71]));
        assert_eq!(auth.check(None, Some(&over)).await, Verdict::Denied);
        assert_eq!(auth.check(None, Some(&at)).await, Verdict::Allowed);
    }
}
