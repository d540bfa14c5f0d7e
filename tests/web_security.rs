//! `--web.config.file` and the hardened server, through the real binary:
//! TLS, mutual TLS, basic auth, bad web configs and slow clients. The
//! certificates are made here for each run.

#![allow(clippy::unwrap_used)]

mod common;

use common::{free_port, run_failing, BIN};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use common::proxy::Proxy;
use common::TempDir;

const NO_ENGINE: &str = "unix:///nonexistent.sock";

/// A CA, a server certificate for localhost and 127.0.0.1, a client
/// certificate from the CA and one from another CA, as PEM files.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new(tag: &str) -> Self {
        let dir = TempDir::new(&format!("web-{tag}"));
        let (ca_pem, issuer) = ca("dse test CA");
        std::fs::write(dir.0.join("ca.crt"), ca_pem).unwrap();
        let (_, rogue) = ca("some other CA");
        let leaf = |name: &str, usage, issuer: &Issuer<'_, KeyPair>, file: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                    .unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, issuer).unwrap();
            std::fs::write(dir.0.join(format!("{file}.crt")), cert.pem()).unwrap();
            std::fs::write(dir.0.join(format!("{file}.key")), key.serialize_pem()).unwrap();
        };
        leaf(
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
            "server",
        );
        leaf(
            "scraper",
            ExtendedKeyUsagePurpose::ClientAuth,
            &issuer,
            "client",
        );
        leaf(
            "intruder",
            ExtendedKeyUsagePurpose::ClientAuth,
            &rogue,
            "rogue",
        );
        Self { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.0.join(file)
    }

    /// Writes a web config next to the certificates; relative names in it
    /// point here.
    fn web_config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A client that trusts the CA, speaks `versions` and presents the
    /// certificate `client` ("client", "rogue") if given.
    fn client(
        &self,
        versions: &[&'static SupportedProtocolVersion],
        client: Option<&str>,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(self.path("ca.crt")).unwrap())
            .unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots);
        Arc::new(match client {
            None => builder.with_no_client_auth(),
            Some(name) => {
                let certs = CertificateDer::pem_file_iter(self.path(&format!("{name}.crt")))
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key"))).unwrap();
                builder.with_client_auth_cert(certs, key).unwrap()
            }
        })
    }
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const ANY_TLS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The exporter binary on a free port; killed when dropped.
struct Exporter {
    child: Child,
    addr: SocketAddr,
}

impl Exporter {
    async fn start(web_config: &Path, docker_host: &str) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = Command::new(BIN)
            .args(["--listen", &addr.to_string(), "--docker-host", docker_host])
            .arg("--web.config.file")
            .arg(web_config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(addr).await.is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("exporter exited with {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never listened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, addr }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status, head and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `GET path HTTP/1.0` over `stream`; an error if no HTTP answer comes back.
async fn exchange<S>(mut stream: S, path: &str, auth: Option<&str>) -> Result<Answer, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| "no answer within 30 s".to_string())?;
    if let Err(e) = read {
        if raw.is_empty() {
            return Err(format!("read: {e}"));
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    if !text.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP answer: {text:?}"));
    }
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Ok(Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

async fn http_get(addr: SocketAddr, path: &str, auth: Option<&str>) -> Result<Answer, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    exchange(stream, path, auth).await
}

async fn https_get(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    path: &str,
    auth: Option<&str>,
) -> Result<Answer, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(client)
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    exchange(tls, path, auth).await
}

const TLS_ONLY: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

#[tokio::test]
async fn tls_serves_https_and_plain_http_to_the_tls_port_fails() {
    let pki = Pki::new("tls");
    let exporter = Exporter::start(&pki.web_config("web.yml", TLS_ONLY), NO_ENGINE).await;
    let ok = https_get(exporter.addr, pki.client(ANY_TLS, None), "/healthz", None)
        .await
        .unwrap();
    assert_eq!((ok.status, ok.body.as_str()), (200, "ok\n"));
    let metrics = https_get(exporter.addr, pki.client(TLS12, None), "/metrics", None)
        .await
        .unwrap();
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("docker_up 0"), "{}", metrics.body);

    let plain = http_get(exporter.addr, "/healthz", None).await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

#[tokio::test]
async fn min_version_tls13_rejects_a_tls12_only_client() {
    let pki = Pki::new("tls13");
    let web = pki.web_config("web.yml", &format!("{TLS_ONLY}  min_version: TLS13\n"));
    let exporter = Exporter::start(&web, NO_ENGINE).await;
    let old = https_get(exporter.addr, pki.client(TLS12, None), "/healthz", None).await;
    let err = old.unwrap_err();
    assert!(err.contains("handshake"), "{err}");
    let new = https_get(exporter.addr, pki.client(TLS13, None), "/healthz", None)
        .await
        .unwrap();
    assert_eq!(new.status, 200);
}

#[tokio::test]
async fn mutual_tls_accepts_only_client_certificates_from_the_ca() {
    let pki = Pki::new("mtls");
    let web = pki.web_config(
        "web.yml",
        &format!(
            "{TLS_ONLY}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
        ),
    );
    let exporter = Exporter::start(&web, NO_ENGINE).await;
    for versions in [TLS12, TLS13] {
        let none = https_get(exporter.addr, pki.client(versions, None), "/healthz", None).await;
        assert!(none.is_err(), "no client certificate was let in: {none:?}");
        let rogue = https_get(
            exporter.addr,
            pki.client(versions, Some("rogue")),
            "/healthz",
            None,
        )
        .await;
        assert!(
            rogue.is_err(),
            "a foreign certificate was let in: {rogue:?}"
        );
        let good = https_get(
            exporter.addr,
            pki.client(versions, Some("client")),
            "/metrics",
            None,
        )
        .await
        .unwrap();
        assert_eq!(good.status, 200);
        assert!(good.body.contains("docker_up"), "{}", good.body);
    }
}

#[tokio::test]
async fn verify_if_given_lets_in_clients_without_a_certificate_but_not_foreign_ones() {
    let pki = Pki::new("mtls-optional");
    let web = pki.web_config(
        "web.yml",
        &format!(
            "{TLS_ONLY}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n"
        ),
    );
    let exporter = Exporter::start(&web, NO_ENGINE).await;
    for versions in [TLS12, TLS13] {
        for (client, let_in) in [(None, true), (Some("client"), true), (Some("rogue"), false)] {
            let answer = https_get(
                exporter.addr,
                pki.client(versions, client),
                "/healthz",
                None,
            )
            .await;
            assert_eq!(answer.is_ok(), let_in, "{client:?}: {answer:?}");
        }
    }
}

fn auth_config(pki: &Pki, tls: bool) -> PathBuf {
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let tls = if tls { TLS_ONLY } else { "" };
    pki.web_config(
        "auth.yml",
        &format!("{tls}basic_auth_users:\n  prometheus: '{hash}'\n  other: '{hash}'\n"),
    )
}

async fn assert_basic_auth<F, Fut>(get: F)
where
    F: Fn(&'static str, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, String>>,
{
    for path in ["/metrics", "/healthz", "/", "/nope"] {
        let none = get(path, None).await.unwrap();
        assert_eq!(none.status, 401, "{path}: {none:?}");
        assert!(
            none.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Basic")),
            "{path}: {none:?}"
        );
    }
    let wrong = get("/metrics", Some(basic("prometheus", "battery staple")))
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("www-authenticate").is_some());
    let unknown = get("/metrics", Some(basic("nobody", "correct horse")))
        .await
        .unwrap();
    assert_eq!(unknown.status, 401);
    let garbage = get("/metrics", Some("Basic !!!".to_string()))
        .await
        .unwrap();
    assert_eq!(garbage.status, 401);
    for _ in 0..3 {
        let right = get("/metrics", Some(basic("prometheus", "correct horse")))
            .await
            .unwrap();
        assert_eq!(right.status, 200, "{right:?}");
        assert!(right.body.contains("docker_up"), "{}", right.body);
    }
}

#[tokio::test]
async fn basic_auth_guards_every_path() {
    let pki = Pki::new("auth");
    let exporter = Exporter::start(&auth_config(&pki, false), NO_ENGINE).await;
    let addr = exporter.addr;
    assert_basic_auth(|path, auth| async move { http_get(addr, path, auth.as_deref()).await })
        .await;
}

#[tokio::test]
async fn basic_auth_over_tls() {
    let pki = Pki::new("auth-tls");
    let exporter = Exporter::start(&auth_config(&pki, true), NO_ENGINE).await;
    let (addr, client) = (exporter.addr, pki.client(ANY_TLS, None));
    assert_basic_auth(|path, auth| {
        let client = client.clone();
        async move { https_get(addr, client, path, auth.as_deref()).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_request_never_reaches_the_engine() {
    assert!(
        Path::new("/var/run/docker.sock").exists(),
        "no engine: run scripts/setup-engine.sh"
    );
    let pki = Pki::new("engine");
    let proxy = Proxy::start(&pki.path("engine.sock"), "/var/run/docker.sock");
    let exporter = Exporter::start(&auth_config(&pki, false), &proxy.url()).await;
    for auth in [
        None,
        Some(basic("prometheus", "wrong")),
        Some(basic("x", "y")),
    ] {
        for path in ["/metrics", "/readyz", "/"] {
            let a = http_get(exporter.addr, path, auth.as_deref())
                .await
                .unwrap();
            assert_eq!(a.status, 401, "{path}");
        }
    }
    assert_eq!(
        proxy.seen(),
        vec![],
        "a rejected request reached the engine"
    );

    let right = basic("prometheus", "correct horse");
    let ok = http_get(exporter.addr, "/metrics", Some(&right))
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("docker_up 1"), "{}", ok.body);
    assert!(proxy.count("/containers/json") >= 1, "{:?}", proxy.seen());
}

#[test]
fn bad_web_config_files_stop_the_exporter_before_it_listens() {
    let pki = Pki::new("bad");
    let listen = format!("127.0.0.1:{}", free_port());
    let hash = bcrypt::hash("pw", 4).unwrap();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown-top.yml",
            format!("basic_auth_users:\n  a: '{hash}'\nbasic_auth_user:\n  b: x\n"),
            vec!["basic_auth_user", "line 3"],
        ),
        (
            "unknown-tls.yml",
            "tls_server_config:\n  cert_file: server.crt\n  keyfile: server.key\n".into(),
            vec!["keyfile", "line 3"],
        ),
        (
            "missing-cert.yml",
            "tls_server_config:\n  cert_file: /nonexistent/server.crt\n  key_file: server.key\n"
                .into(),
            vec!["tls_server_config.cert_file", "/nonexistent/server.crt"],
        ),
        (
            "key-is-cert.yml",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n".into(),
            vec!["tls_server_config.key_file", "private key"],
        ),
        (
            "mismatch.yml",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n".into(),
            vec!["tls_server_config", "client.key"],
        ),
        (
            "plain-hash.yml",
            "basic_auth_users:\n  alice: hunter2\n".into(),
            vec!["basic_auth_users.alice", "bcrypt"],
        ),
        (
            "any-cert.yml",
            format!(
                "{TLS_ONLY}  client_auth_type: RequireAnyClientCert\n  client_ca_file: ca.crt\n"
            ),
            vec!["tls_server_config.client_auth_type", "not supported"],
        ),
        (
            "no-ca.yml",
            format!("{TLS_ONLY}  client_auth_type: RequireAndVerifyClientCert\n"),
            vec!["client_ca_file"],
        ),
        (
            "tls11.yml",
            format!("{TLS_ONLY}  min_version: TLS11\n"),
            vec!["tls_server_config.min_version", "TLS11"],
        ),
    ];
    for (name, text, wanted) in &cases {
        let path = pki.web_config(name, text);
        let err = run_failing(&[
            "--listen",
            &listen,
            "--docker-host",
            NO_ENGINE,
            "--web.config.file",
            path.to_str().unwrap(),
        ]);
        assert!(err.contains(path.to_str().unwrap()), "{name}: {err}");
        for w in wanted {
            assert!(err.contains(w), "{name}: {w:?} not in {err}");
        }
        assert!(std::net::TcpListener::bind(&listen).is_ok(), "{name} bound");
    }
    let err = run_failing(&["--web.config.file", "/nonexistent/web.yml"]);
    assert!(err.contains("/nonexistent/web.yml"), "{err}");
}

/// Reads until the server closes; how long that took.
async fn time_to_close(mut stream: impl AsyncRead + Unpin) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut sink))
        .await
        .expect("still open after 20 s");
    let text = String::from_utf8_lossy(&sink);
    assert!(!text.contains(" 200 "), "{text}");
    started.elapsed()
}

#[tokio::test]
async fn slow_clients_are_cut_off_after_the_header_timeout() {
    let pki = Pki::new("slow");
    let plain = Exporter::start(&pki.web_config("empty.yml", ""), NO_ENGINE).await;
    let tls = Exporter::start(&pki.web_config("tls.yml", TLS_ONLY), NO_ENGINE).await;

    // Half a header, then nothing.
    let mut half = TcpStream::connect(plain.addr).await.unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    // A TLS handshake that never starts.
    let silent = TcpStream::connect(tls.addr).await.unwrap();
    // Half a header after the handshake.
    let mut half_tls = tokio_rustls::TlsConnector::from(pki.client(ANY_TLS, None))
        .connect(
            ServerName::try_from("localhost").unwrap(),
            TcpStream::connect(tls.addr).await.unwrap(),
        )
        .await
        .unwrap();
    half_tls
        .write_all(b"GET /metrics HTTP/1.1\r\n")
        .await
        .unwrap();
    half_tls.flush().await.unwrap();

    let (a, b, c) = tokio::join!(
        time_to_close(half),
        time_to_close(silent),
        time_to_close(half_tls)
    );
    for took in [a, b, c] {
        assert!(
            took >= Duration::from_secs(8) && took <= Duration::from_secs(12),
            "closed after {took:?}, expected the 10 s header timeout"
        );
    }
    // Still serving.
    let ok = http_get(plain.addr, "/healthz", None).await.unwrap();
    assert_eq!(ok.status, 200);
}
