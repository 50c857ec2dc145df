//! Proxies on loopback to put between a service and anvil:
//!
//! - [`TcpProxy`] a test can cut: while it is down, open connections are dropped and new ones
//!   are closed as soon as they are accepted (a node that went away), until it is brought back.
//! - [`RpcProxy`], which can hold broadcasts back: the sender signed and stored a transaction,
//!   and then died before the node had it, or while the node's answer was on its way.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::Mutex,
    task::JoinSet,
};

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    address: SocketAddr,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let address = listener.local_addr()?;
        let down = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accepting = tokio::spawn({
            let (down, connections) = (down.clone(), connections.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    connections.lock().await.spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            drop(tokio::io::copy_bidirectional(&mut client, &mut server).await);
                        }
                    });
                }
            }
        });
        Ok(Self { address, down, connections, accepting })
    }

    /// `http://` and the proxy's address.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Cuts the line: drops every open connection and refuses new ones.
    pub async fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.connections.lock().await.abort_all();
    }

    /// Brings the line back.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        if let Ok(mut connections) = self.connections.try_lock() {
            connections.abort_all();
        }
    }
}

/// What an [`RpcProxy`] does with `eth_sendRawTransaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Hold {
    /// Forwards it and answers, as every other call.
    Nothing = 0,
    /// Never forwards it nor answers.
    Swallow = 1,
    /// Forwards it but never answers (the node has the transaction; the sender cannot know).
    ForwardSilently = 2,
}

/// A JSON-RPC proxy whose handling of broadcasts a test sets; stops when dropped.
#[derive(Debug)]
pub struct RpcProxy {
    url: String,
    hold: Arc<AtomicU8>,
    seen: Arc<AtomicUsize>,
    serving: tokio::task::JoinHandle<()>,
}

impl RpcProxy {
    /// Listens on a free loopback port and forwards every call to `upstream`.
    pub async fn start(upstream: String, hold: Hold) -> std::io::Result<Self> {
        use axum::{extract::State, routing::post};

        #[derive(Clone)]
        struct Shared {
            upstream: String,
            client: reqwest::Client,
            hold: Arc<AtomicU8>,
            seen: Arc<AtomicUsize>,
        }

        async fn forward(State(shared): State<Shared>, body: axum::body::Bytes) -> axum::response::Response {
            let is_broadcast = String::from_utf8_lossy(&body).contains("eth_sendRawTransaction");
            let hold = shared.hold.load(Ordering::SeqCst);
            if is_broadcast {
                shared.seen.fetch_add(1, Ordering::SeqCst);
            }
            if is_broadcast && hold == Hold::Swallow as u8 {
                return std::future::pending().await;
            }
            let sent =
                shared.client.post(&shared.upstream).header("content-type", "application/json").body(body).send().await;
            let answer = match sent {
                Ok(response) => response.bytes().await.unwrap_or_default(),
                Err(_) => return axum::http::StatusCode::BAD_GATEWAY.into_response(),
            };
            if is_broadcast && hold == Hold::ForwardSilently as u8 {
                return std::future::pending().await;
            }
            ([(axum::http::header::CONTENT_TYPE, "application/json")], answer).into_response()
        }

        use axum::response::IntoResponse;
        let (hold, seen) = (Arc::new(AtomicU8::new(hold as u8)), Arc::new(AtomicUsize::new(0)));
        let shared = Shared { upstream, client: reqwest::Client::new(), hold: hold.clone(), seen: seen.clone() };
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new().route("/", post(forward)).with_state(shared);
        let serving = tokio::spawn(async move { drop(axum::serve(listener, app).await) });
        Ok(Self { url, hold, seen, serving })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// From now on, handles broadcasts as `hold` says.
    pub fn hold(&self, hold: Hold) {
        self.hold.store(hold as u8, Ordering::SeqCst);
    }

    /// How many broadcasts it has seen.
    pub fn broadcasts_seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.serving.abort();
    }
}
