//! The one HTTP client of the tests: `GET` with headers, optional basic auth
//! and TLS, a timeout for the whole exchange; chunked and plain bodies.
//!
//! ```ignore
//! let answer = Get::new(addr, "/metrics").header("Accept", "text/plain").send().await?;
//! let answer = Get::new(addr, "/healthz").tls(client).send_blocking()?;
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest an exchange may take unless the request says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header lines as sent, names in their original case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked where it was chunked.
    pub body: String,
}

impl Answer {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A `GET` request, built up and then sent.
#[derive(Clone)]
pub struct Get {
    addr: SocketAddr,
    path: String,
    headers: Vec<(String, String)>,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
}

impl Get {
    /// `GET path` to `addr`, plain HTTP, [`DEFAULT_TIMEOUT`].
    pub fn new(addr: SocketAddr, path: &str) -> Self {
        Self {
            addr,
            path: path.to_string(),
            headers: Vec::new(),
            tls: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds a header line.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds `Authorization: Basic ...`.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        self.header("Authorization", &basic(user, password))
    }

    /// Speaks TLS with `client`, expecting a certificate for `localhost`.
    pub fn tls(mut self, client: Arc<ClientConfig>) -> Self {
        self.tls = Some(client);
        self
    }

    /// Bounds connect, handshake, request and answer together.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends it; an error (connect, handshake, no HTTP answer, timeout)
    /// as text.
    pub async fn send(self) -> Result<Answer, String> {
        let (addr, path, timeout) = (self.addr, self.path.clone(), self.timeout);
        tokio::time::timeout(timeout, self.exchange())
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "GET {path} from {addr}: no answer within {timeout:?}"
                ))
            })
    }

    /// [`Get::send`] for code that runs no tokio runtime.
    pub fn send_blocking(self) -> Result<Answer, String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?
            .block_on(self.send())
    }

    async fn exchange(self) -> Result<Answer, String> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect to {}: {e}", self.addr))?;
        match self.tls.clone() {
            None => self.over(stream).await,
            Some(client) => {
                let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
                let tls = tokio_rustls::TlsConnector::from(client)
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                self.over(tls).await
            }
        }
    }

    async fn over<S>(&self, mut stream: S) -> Result<Answer, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
            self.path
        );
        for (k, v) in &self.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        // A peer that closes TLS without close_notify has still answered.
        if let Err(e) = stream.read_to_end(&mut raw).await {
            if raw.is_empty() {
                return Err(format!("read: {e}"));
            }
        }
        parse(&raw)
    }
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn parse(raw: &[u8]) -> Result<Answer, String> {
    let text = String::from_utf8_lossy(raw);
    if !text.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP answer: {text:?}"));
    }
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers: {text:?}"))?;
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| format!("chunked body cut short after {} bytes", out.len()))?;
        let hex = size.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        if n == 0 {
            return Ok(out);
        }
        let chunk = after
            .get(..n)
            .ok_or_else(|| format!("chunk of {n} bytes cut short"))?;
        out.push_str(chunk);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
}

/// A TLS client that trusts the CA in `ca_pem`, speaks `versions` and, if
/// given, presents `client` (certificate and key PEM files).
pub fn tls_client(
    ca_pem: &Path,
    versions: &[&'static SupportedProtocolVersion],
    client: Option<(&Path, &Path)>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(ca_pem)
        .unwrap_or_else(|e| panic!("{}: {e}", ca_pem.display()));
    roots.add(ca).expect("CA certificate");
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots);
    Arc::new(match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
            let key = PrivateKeyDer::from_pem_file(key)
                .unwrap_or_else(|e| panic!("{}: {e}", key.display()));
            builder
                .with_client_auth_cert(certs, key)
                .expect("client certificate")
        }
    })
}

/// Percent-encodes a query parameter value (a PromQL expression, say).
pub fn query_escape(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
