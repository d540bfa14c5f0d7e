//! A remote engine over TCP with TLS and a client certificate, as the docker
//! CLI reaches it (`ca.pem`, `cert.pem`, `key.pem`), on connections that are
//! kept and reused: every new one costs a TLS handshake on both ends, and a
//! scrape makes a call per container.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::BollardRequest;
use futures::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::transport::{SendFn, Transport};

/// How long an idle connection to the engine is kept for the next scrape:
/// longer than common scrape intervals, shorter than the engine's own
/// idle timeout is likely to be.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A client for `host` (`tcp://` or `https://`) with the TLS material in
/// `dir`. Every file that is missing or does not parse is named.
pub fn connect(host: &str, dir: &Path) -> anyhow::Result<Transport> {
    let config = client_config(dir)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build(https);
    let addr = match host.split_once("://") {
        Some((_, rest)) => format!("https://{rest}"),
        None => format!("https://{host}"),
    };
    let send: SendFn = Arc::new(move |req: BollardRequest| {
        let client = client.clone();
        async move {
            client
                .request(req)
                .await
                // bollard without its own transports has no variant for
                // the pooling client's error: carried as an I/O error.
                .map_err(|e| bollard::errors::Error::IOError {
                    err: std::io::Error::other(e),
                })
        }
        .boxed()
    });
    Ok(Transport::new(send, addr))
}

/// TLS that trusts only `ca.pem` and presents `cert.pem` with `key.pem`.
fn client_config(dir: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let file = |name: &str| dir.join(name);
    let read_certs = |name: &str| -> anyhow::Result<Vec<CertificateDer<'static>>> {
        let path = file(name);
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "{}: no certificate in it",
            path.display()
        );
        Ok(certs)
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in read_certs("ca.pem")? {
        roots
            .add(ca)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file("ca.pem").display()))?;
    }
    let chain = read_certs("cert.pem")?;
    let key_path = file("key.pem");
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            anyhow::anyhow!(
                "{} and {}: {e}",
                file("cert.pem").display(),
                key_path.display()
            )
        })
}
