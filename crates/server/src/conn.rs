//! Accepting connections: caps per client address and in total, a deadline for a request's
//! headers, and a graceful stop. Written over hyper directly because `axum::serve` sets no
//! header deadline, so a client that sends half its headers would hold a connection forever.

use crate::state::AppState;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Open connections, by client address and in total.
pub struct Caps {
    total: usize,
    per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
pub struct Slot {
    caps: Arc<Caps>,
    ip: IpAddr,
}

impl Caps {
    pub fn new(total: usize, per_ip: usize) -> Arc<Self> {
        Arc::new(Caps {
            total: total.max(1),
            per_ip: per_ip.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a connection from `ip`, or `None` when that address or the server is full.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let all: usize = open.values().sum();
        let mine = open.get(&ip).copied().unwrap_or(0);
        if all >= self.total || mine >= self.per_ip {
            return None;
        }
        open.insert(ip, mine + 1);
        Some(Slot {
            caps: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true, then waits for the connections in
/// flight to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    st: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let c = &st.config;
    let caps = Caps::new(c.max_connections, c.max_connections_per_ip);
    st.metrics
        .connections_capacity
        .set(c.max_connections as i64);
    st.metrics
        .connections_per_ip_capacity
        .set(c.max_connections_per_ip as i64);
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(c.header_timeout);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            // Out of file descriptors or a connection reset before accept: keep serving.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(slot) = caps.enter(peer.ip()) else {
            st.metrics.connections_rejected.inc();
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let metrics = st.metrics.clone();
        metrics.connections.inc();
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
            metrics.connections.dec();
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_address_and_in_total_and_free_on_drop() {
        let caps = Caps::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = caps.enter(a).unwrap();
        let _a2 = caps.enter(a).unwrap();
        assert!(caps.enter(a).is_none(), "per address");
        let _b1 = caps.enter(b).unwrap();
        assert!(caps.enter(b).is_none(), "in total");
        drop(a1);
        assert!(caps.enter(b).is_some());
    }
}
