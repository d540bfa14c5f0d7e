//! The engine over TCP with TLS, as `DOCKER_HOST=tcp://...`,
//! `DOCKER_TLS_VERIFY=1` and `DOCKER_CERT_PATH` set it up, or a docker context
//! with TLS material: the real engine behind a TLS terminator that demands a
//! client certificate from the CA.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use common::{names_config, unique, Container, Exporter, TempDir};
use docker_stats_exporter::config::context::DockerEnv;
use docker_stats_exporter::config::{Config, Overrides};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn leaf(
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> (CertificateDer<'static>, String, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "dse");
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.der().clone(), cert.pem(), key)
}

/// Accepts TLS with a client certificate from `ca` on 127.0.0.1 and pipes
/// each connection to the engine's unix socket.
async fn tls_engine(dir: &Path) -> std::net::SocketAddr {
    tls_engine_counting(dir).await.0
}

/// [`tls_engine`], also counting the TLS handshakes it completes.
async fn tls_engine_counting(
    dir: &Path,
) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "dse engine CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let (server_cert, _, server_key) = leaf(ExtendedKeyUsagePurpose::ServerAuth, &issuer);
    let (_, client_pem, client_key) = leaf(ExtendedKeyUsagePurpose::ClientAuth, &issuer);
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), client_pem).unwrap();
    std::fs::write(dir.join("key.pem"), client_key.serialize_pem()).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_cert],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut engine = tokio::net::UnixStream::connect(common::engine_socket())
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut engine).await;
            });
        }
    });
    (addr, handshakes)
}

/// An exporter for `host` with TLS verification on, its certificates from
/// `certs` (as DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH would set it).
async fn verifying_exporter(text: &str, host: &str, certs: &Path) -> Exporter {
    let config = Exporter::config(text, host).with_engine_tls(
        Some("1".into()),
        Some(certs.display().to_string()),
        None,
    );
    Exporter::with_config(config).await
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_over_tcp_with_tls_and_a_client_certificate() {
    let c = Container::sleeper(&unique("dse-tls-engine-target"), &[]);
    let dir = TempDir::new("engine-tls");
    let addr = tls_engine(&dir.0).await;
    let host = format!("tcp://{addr}");
    let text = &names_config(&[&c.name], "");

    let exporter = verifying_exporter(text, &host, &dir.0).await;
    let m = exporter.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(1.0));
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![c.name.clone()]
    );

    // Without DOCKER_TLS_VERIFY the same address is plain HTTP: refused.
    let plain = Exporter::start(text, &host).await;
    let m = plain.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(0.0));

    // Certificates from elsewhere: the engine's CA does not vouch for them.
    let other = TempDir::new("engine-tls-other");
    let _unused = tls_engine(&other.0).await;
    std::fs::copy(dir.0.join("ca.pem"), other.0.join("ca.pem")).unwrap();
    let wrong_client = verifying_exporter(text, &host, &other.0).await;
    let m = wrong_client.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(0.0));
}

/// Every new connection to a TLS engine is a handshake on both ends, and a
/// scrape makes a call per container: connections are kept and reused
/// between scrapes instead of opened for every call.
#[tokio::test(flavor = "multi_thread")]
async fn connections_to_a_tls_engine_are_reused_across_scrapes() {
    let names: Vec<String> = (0..5)
        .map(|i| unique(&format!("dse-tls-reuse-{i}")))
        .collect();
    let _c: Vec<Container> = names.iter().map(|n| Container::sleeper(n, &[])).collect();
    let dir = TempDir::new("engine-tls-reuse");
    let (addr, handshakes) = tls_engine_counting(&dir.0).await;
    let exporter =
        verifying_exporter(&names_config(&names, ""), &format!("tcp://{addr}"), &dir.0).await;
    let count = || handshakes.load(std::sync::atomic::Ordering::SeqCst);
    let m = exporter.metrics().await;
    assert_eq!(m.names("container_memory_usage_bytes"), names);
    let after_first = count();
    let mut calls = 0;
    for _ in 0..3 {
        let m = exporter.metrics().await;
        assert_eq!(m.names("container_memory_usage_bytes"), names);
        // At least the list and one stats call per container.
        calls += 1 + names.len();
    }
    let more = count() - after_first;
    assert!(
        more < names.len(),
        "{more} new TLS handshakes for {calls}+ calls over three scrapes (first scrape: {after_first})"
    );
}

/// A docker context with TLS material, as `docker context create --docker
/// host=tcp://...,ca=...,cert=...,key=...` stores it, reaches the same
/// endpoint with the context's certificates.
#[tokio::test(flavor = "multi_thread")]
async fn docker_context_with_tls_material() {
    let c = Container::sleeper(&unique("dse-tls-context-target"), &[]);
    let certs = TempDir::new("engine-tls-context-certs");
    let addr = tls_engine(&certs.0).await;
    let store = TempDir::new("engine-tls-context-store");
    let file = |f: &str| certs.0.join(f).display().to_string();
    let out = std::process::Command::new(common::DOCKER)
        .env("DOCKER_CONFIG", &store.0)
        .args(["context", "create", "dse-tls-context", "--docker"])
        .arg(format!(
            "host=tcp://{addr},ca={},cert={},key={}",
            file("ca.pem"),
            file("cert.pem"),
            file("key.pem")
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The certificates now live in the store only.
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::remove_file(certs.0.join(f)).unwrap();
    }

    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        docker_host: None,
    };
    let env = DockerEnv {
        docker_context: Some("dse-tls-context".into()),
        docker_config: Some(store.0.clone()),
        home: None,
    };
    let text = &names_config(&[&c.name], "");
    let config = Config::parse("test", text, &overrides, None)
        .unwrap()
        .with_docker_context(&env)
        .unwrap();
    assert_eq!(config.docker_host, format!("tcp://{addr}"));
    assert!(config.docker_tls.as_ref().unwrap().starts_with(&store.0));
    let exporter = Exporter::with_config(config).await;
    let m = exporter.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(1.0));
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![c.name.clone()]
    );
}
