//! A unix-socket pass-through to the engine that the test can stop and
//! start, as if the engine went away and came back: stopping it closes every
//! connection and the socket, so the exporter's pooled connections fail too.
//! It counts the bytes clients sent, to see whether anything asked the
//! engine at all.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

pub struct Passthrough {
    socket: PathBuf,
    engine: PathBuf,
    sent: Arc<AtomicU64>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Passthrough {
    /// Listens on `socket`, forwarding to the engine socket `engine`.
    pub fn start(socket: &Path, engine: &Path) -> Self {
        let p = Self {
            socket: socket.to_path_buf(),
            engine: engine.to_path_buf(),
            sent: Arc::default(),
            tasks: Arc::default(),
        };
        p.resume();
        p
    }

    /// The `DOCKER_HOST` form of its socket.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Bytes clients have sent towards the engine so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(SeqCst)
    }

    /// Listens (again).
    pub fn resume(&self) {
        let _ = std::fs::remove_file(&self.socket);
        let listener = UnixListener::bind(&self.socket).expect("bind pass-through socket");
        let (engine, sent, tasks) = (self.engine.clone(), self.sent.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (engine, sent) = (engine.clone(), sent.clone());
                let conn = tokio::spawn(async move {
                    let Ok(upstream) = UnixStream::connect(&engine).await else {
                        return;
                    };
                    let (mut client_rx, mut client_tx) = client.into_split();
                    let (mut up_rx, mut up_tx) = upstream.into_split();
                    let to_engine = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            match client_rx.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    sent.fetch_add(n as u64, SeqCst);
                                    if up_tx.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = up_tx.shutdown().await;
                    };
                    let to_client = async {
                        let _ = tokio::io::copy(&mut up_rx, &mut client_tx).await;
                        let _ = client_tx.shutdown().await;
                    };
                    futures::join!(to_engine, to_client);
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the socket and every connection through it.
    pub fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Passthrough {
    fn drop(&mut self) {
        self.stop();
    }
}
