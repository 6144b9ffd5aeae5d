//! The process entry point of a node: parse the configuration (flags and `SIO_*`
//! variables), install logging, run the node until SIGTERM or SIGINT, then drain. The
//! `sio-server` binary is this function.
//!
//! Exit codes: 0 after a clean drain, 1 on a runtime failure, 2 on invalid configuration.
//!
//! `sio-server healthcheck [HOST:PORT]` is a probe for container health checks (the
//! runtime image has no curl): it GETs `/healthz` of the node on this host, at the port of
//! `HOST:PORT`, else of `SIO_LISTEN`, else 3000, and exits 0 on a 200, 1 otherwise, within
//! a few seconds. An unspecified listen address (`0.0.0.0`, `[::]`) is probed on loopback.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{Cli, Config};
use crate::{node, telemetry};
use clap::Parser as _;
use tracing::{error, info};

/// Runs a node as a process: see the module docs.
pub fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("healthcheck") {
        return healthcheck(args.next());
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version go to stdout with exit 0, as clap does them.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.to_string();
            let parts: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!(
                "sio-server: invalid configuration: {}",
                parts.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sio-server: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    info!(config = %config, "starting sio-server {}", env!("CARGO_PKG_VERSION"));

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.worker_threads {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(node::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = format!("{e:#}"), "sio-server failed");
            ExitCode::FAILURE
        }
    }
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received"),
        () = term => info!("SIGTERM received"),
    }
}

// ---- container health probe (`sio-server healthcheck`) ----

/// How long the probe may take to connect, and then to get an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// `sio-server healthcheck [HOST:PORT]`: see the module docs.
fn healthcheck(target: Option<String>) -> ExitCode {
    let target = target
        .or_else(|| std::env::var(crate::config::env::LISTEN).ok())
        .unwrap_or_else(|| "0.0.0.0:3000".to_string());
    match probe_addr(&target).and_then(|addr| probe(addr, PROBE_TIMEOUT)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sio-server healthcheck: {target}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The address to probe for a listen address: its own, or loopback when unspecified.
fn probe_addr(listen: &str) -> Result<SocketAddr, String> {
    let mut addr = listen
        .to_socket_addrs()
        .map_err(|e| format!("not a HOST:PORT address ({e})"))?
        .next()
        .ok_or("the address resolves to nothing")?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(addr)
}

/// `GET /healthz` on `addr`: `Ok` on a 200 answer within `timeout` (per step).
fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() && !head[..len].contains(&b'\n') {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..len]);
    let status = line.lines().next().unwrap_or("").trim();
    match status.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ if status.is_empty() => Err("no answer".into()),
        _ => Err(format!("answered {status:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot HTTP server on loopback answering `status_line`.
    fn answer_once(status_line: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut request = Vec::new();
                let mut buf = [0u8; 512];
                while !request.ends_with(b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(s, "{status_line}\r\ncontent-length: 0\r\n\r\n");
            }
        });
        addr
    }

    #[test]
    fn a_200_passes_anything_else_fails() {
        let t = Duration::from_secs(2);
        assert_eq!(probe(answer_once("HTTP/1.1 200 OK"), t), Ok(()));
        let err = probe(answer_once("HTTP/1.1 503 Service Unavailable"), t).unwrap_err();
        assert!(err.contains("503"), "{err}");
        // nothing listens on a port just released
        let closed = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind");
        let err = probe(closed, t).unwrap_err();
        assert!(err.starts_with("connect"), "{err}");
    }

    #[test]
    fn unspecified_listen_addresses_are_probed_on_loopback() {
        assert_eq!(
            probe_addr("0.0.0.0:3000"),
            Ok(([127, 0, 0, 1], 3000).into())
        );
        assert_eq!(
            probe_addr("[::]:8080"),
            Ok((Ipv6Addr::LOCALHOST, 8080).into())
        );
        assert_eq!(probe_addr("10.1.2.3:80"), Ok(([10, 1, 2, 3], 80).into()));
        assert!(probe_addr("no-port").is_err());
    }
}
