//! `--web.config.file` and the hardened server, through the real binary:
//! TLS, mutual TLS, basic auth, bad web configs and slow clients. The
//! certificates are made here for each run.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::{ClientConfig, SupportedProtocolVersion};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::http::{self, Answer, Get};
use common::proxy::Proxy;
use common::{engine_socket, run_failing, ChildServer, TempDir};

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
        let pair = client.map(|name| {
            (
                self.path(&format!("{name}.crt")),
                self.path(&format!("{name}.key")),
            )
        });
        http::tls_client(
            &self.path("ca.crt"),
            versions,
            pair.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )
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

/// The exporter binary with `web_config`, reading `docker_host`, once it
/// listens.
fn exporter(web_config: &Path, docker_host: &str) -> ChildServer {
    let web = web_config.to_str().expect("UTF-8 path");
    ChildServer::exporter(&["--docker-host", docker_host, "--web.config.file", web])
}

/// `GET path` over TLS with `client`.
async fn tls_get(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    path: &str,
) -> Result<Answer, String> {
    Get::new(addr, path).tls(client).send().await
}

const TLS_ONLY: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

#[tokio::test]
async fn tls_serves_https_and_plain_http_to_the_tls_port_fails() {
    let pki = Pki::new("tls");
    let exporter = exporter(&pki.web_config("web.yml", TLS_ONLY), NO_ENGINE);
    let ok = tls_get(exporter.addr, pki.client(ANY_TLS, None), "/healthz")
        .await
        .unwrap();
    assert_eq!((ok.status, ok.body.as_str()), (200, "ok\n"));
    let metrics = tls_get(exporter.addr, pki.client(TLS12, None), "/metrics")
        .await
        .unwrap();
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("docker_up 0"), "{}", metrics.body);

    let plain = Get::new(exporter.addr, "/healthz").send().await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

/// The live view and its JSON are behind the same TLS: the engine that does
/// not answer is named in a JSON 503, over TLS only.
#[tokio::test]
async fn the_live_view_and_its_json_are_served_over_tls() {
    let pki = Pki::new("tls-live");
    let exporter = exporter(&pki.web_config("web.yml", TLS_ONLY), NO_ENGINE);
    let page = tls_get(exporter.addr, pki.client(ANY_TLS, None), "/")
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-security-policy")
        .is_some_and(|csp| csp.starts_with("default-src 'none'")));
    let api = tls_get(exporter.addr, pki.client(ANY_TLS, None), "/api/containers")
        .await
        .unwrap();
    assert_eq!(api.status, 503, "{}", api.body);
    let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    let error = json["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!("engine {NO_ENGINE} not answering: ")),
        "{error}"
    );
    for path in ["/api/containers", "/live.js"] {
        let plain = Get::new(exporter.addr, path).send().await;
        assert!(plain.is_err(), "{path}: plain HTTP was answered: {plain:?}");
    }
}

#[tokio::test]
async fn min_version_tls13_rejects_a_tls12_only_client() {
    let pki = Pki::new("tls13");
    let web = pki.web_config("web.yml", &format!("{TLS_ONLY}  min_version: TLS13\n"));
    let exporter = exporter(&web, NO_ENGINE);
    let old = tls_get(exporter.addr, pki.client(TLS12, None), "/healthz").await;
    let err = old.unwrap_err();
    assert!(err.contains("handshake"), "{err}");
    let new = tls_get(exporter.addr, pki.client(TLS13, None), "/healthz")
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
    let exporter = exporter(&web, NO_ENGINE);
    for versions in [TLS12, TLS13] {
        let none = tls_get(exporter.addr, pki.client(versions, None), "/healthz").await;
        assert!(none.is_err(), "no client certificate was let in: {none:?}");
        let rogue = tls_get(
            exporter.addr,
            pki.client(versions, Some("rogue")),
            "/healthz",
        )
        .await;
        assert!(
            rogue.is_err(),
            "a foreign certificate was let in: {rogue:?}"
        );
        let good = tls_get(
            exporter.addr,
            pki.client(versions, Some("client")),
            "/metrics",
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
    let exporter = exporter(&web, NO_ENGINE);
    for versions in [TLS12, TLS13] {
        for (client, let_in) in [(None, true), (Some("client"), true), (Some("rogue"), false)] {
            let answer = tls_get(exporter.addr, pki.client(versions, client), "/healthz").await;
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

/// Every path needs the right user and password; `get` makes the request.
async fn assert_basic_auth(get: impl Fn(&str) -> Get) {
    for path in [
        "/metrics",
        "/healthz",
        "/",
        "/api/containers",
        "/live.js",
        "/nope",
    ] {
        let none = get(path).send().await.unwrap();
        assert_eq!(none.status, 401, "{path}: {none:?}");
        assert!(
            none.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Basic")),
            "{path}: {none:?}"
        );
    }
    let wrong = get("/metrics")
        .basic_auth("prometheus", "battery staple")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("www-authenticate").is_some());
    let unknown = get("/metrics")
        .basic_auth("nobody", "correct horse")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status, 401);
    let garbage = get("/metrics")
        .header("Authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status, 401);
    for _ in 0..3 {
        let right = get("/metrics")
            .basic_auth("prometheus", "correct horse")
            .send()
            .await
            .unwrap();
        assert_eq!(right.status, 200, "{right:?}");
        assert!(right.body.contains("docker_up"), "{}", right.body);
    }
}

#[tokio::test]
async fn basic_auth_guards_every_path() {
    let pki = Pki::new("auth");
    let exporter = exporter(&auth_config(&pki, false), NO_ENGINE);
    assert_basic_auth(|path| Get::new(exporter.addr, path)).await;
}

#[tokio::test]
async fn basic_auth_over_tls() {
    let pki = Pki::new("auth-tls");
    let exporter = exporter(&auth_config(&pki, true), NO_ENGINE);
    let client = pki.client(ANY_TLS, None);
    assert_basic_auth(|path| Get::new(exporter.addr, path).tls(client.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_request_never_reaches_the_engine() {
    assert!(
        Path::new(engine_socket()).exists(),
        "no engine at {}: run scripts/setup-engine.sh",
        engine_socket()
    );
    let pki = Pki::new("engine");
    let proxy = Proxy::start(&pki.path("engine.sock"), engine_socket());
    let exporter = exporter(&auth_config(&pki, false), &proxy.url());
    let wrong = [("prometheus", "wrong"), ("x", "y")];
    for path in ["/metrics", "/readyz", "/"] {
        let none = Get::new(exporter.addr, path).send().await.unwrap();
        assert_eq!(none.status, 401, "{path}");
        for (user, password) in wrong {
            let a = Get::new(exporter.addr, path)
                .basic_auth(user, password)
                .send()
                .await
                .unwrap();
            assert_eq!(a.status, 401, "{path} as {user}");
        }
    }
    assert_eq!(
        proxy.seen(),
        vec![],
        "a rejected request reached the engine"
    );

    let ok = Get::new(exporter.addr, "/metrics")
        .basic_auth("prometheus", "correct horse")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("docker_up 1"), "{}", ok.body);
    assert!(proxy.count("/containers/json") >= 1, "{:?}", proxy.seen());
}

#[test]
fn bad_web_config_files_stop_the_exporter_before_it_listens() {
    let pki = Pki::new("bad");
    // A port this test holds: an exporter that got as far as binding it
    // would fail with "cannot listen" instead of naming the bad file.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
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
        assert!(
            !err.contains("cannot listen"),
            "{name} tried to listen: {err}"
        );
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
    let plain = exporter(&pki.web_config("empty.yml", ""), NO_ENGINE);
    let tls = exporter(&pki.web_config("tls.yml", TLS_ONLY), NO_ENGINE);

    // Raw streams on purpose: a request that never completes.
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
    let ok = Get::new(plain.addr, "/healthz").send().await.unwrap();
    assert_eq!(ok.status, 200);
}
