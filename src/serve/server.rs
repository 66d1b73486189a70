//! The accept loop of a stage server: HTTP/1.1 with keep-alive, `TCP_NODELAY`, request-head
//! and body timeouts, a connection cap, in-flight limits, and a graceful shutdown that lets
//! requests in flight finish.

use super::*;

/// Bounds that keep any client from stalling or exhausting a stage server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A connection that has not sent a complete request head within this is closed; hyper
    /// also runs this timer while a keep-alive connection waits for its next request, so it is
    /// the idle timeout too (60 s, like an AWS load balancer's default).
    pub header_timeout: Duration,
    /// A request whose body is not complete within this is answered 408.
    pub body_timeout: Duration,
    /// Invocations being read or scored at once; more wait (up to `body_timeout`, then 503).
    pub max_inflight: usize,
    /// Open connections; beyond this the server stops accepting until one closes.
    pub max_connections: usize,
    /// Records per request for which an attribution may be asked (it costs ~100x a score).
    pub max_attribution_records: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_inflight: 256,
            max_connections: 4096,
            max_attribution_records: 1000,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `ep` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ep: Arc<Endpoint>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, ep, Limits::default(), shutdown).await
}

/// [`serve`] with explicit limits: HTTP/1.1 with keep-alive, `TCP_NODELAY`, a request-head
/// timeout, a connection cap, and a graceful shutdown that lets requests in flight finish
/// (up to `shutdown_grace`).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    ep: Arc<Endpoint>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router_with(ep, limits.clone());
    serve_app(listener, app, &limits, None, shutdown).await
}

/// Serves `app` on `listener` with `limits`' connection bounds until `shutdown` resolves;
/// with `tls`, every connection is a TLS one (the handshake bounded by the head timeout).
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let grace = limits.shutdown_grace;
    let header_timeout = limits.header_timeout;
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => p.expect("never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        match &tls {
            None => {
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            Some(cfg) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
                let watcher = graceful.watcher();
                let builder = builder.clone();
                tokio::spawn(async move {
                    // A client that never completes the handshake is dropped like one that
                    // never sends a request head.
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
                    {
                        let _ = watcher
                            .watch(builder.serve_connection(TokioIo::new(tls), svc))
                            .await;
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
    Ok(())
}
