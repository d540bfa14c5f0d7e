//! The engine over TCP with TLS, as `DOCKER_HOST=tcp://...`,
//! `DOCKER_TLS_VERIFY=1` and `DOCKER_CERT_PATH` set it up: the real engine
//! behind a TLS terminator that demands a client certificate from the CA.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{names_config, unique, Container, Exporter, TempDir};
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
async fn tls_engine(dir: &std::path::Path) -> std::net::SocketAddr {
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
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut engine = tokio::net::UnixStream::connect(common::engine_socket())
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut engine).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_over_tcp_with_tls_and_a_client_certificate() {
    let c = Container::sleeper(&unique("dse-tls-engine-target"), &[]);
    let dir = TempDir::new("engine-tls");
    let addr = tls_engine(&dir.0).await;
    let host = format!("tcp://{addr}");
    let text = &names_config(&[&c.name], "");

    let config = Exporter::config(text, &host).with_engine_tls(
        Some("1".into()),
        Some(dir.0.display().to_string()),
        None,
    );
    let exporter = Exporter::with_config(config).await;
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
    let config = Exporter::config(text, &host).with_engine_tls(
        Some("1".into()),
        Some(other.0.display().to_string()),
        None,
    );
    let wrong_client = Exporter::with_config(config).await;
    let m = wrong_client.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(0.0));
}
