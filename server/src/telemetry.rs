//! Logging set-up. Only the binary calls this; libraries only emit `tracing` events.
//!
//! socketioxide and engineioxide log whole packets at `debug` (a client's handshake
//! `auth`, its JWT included, and every event payload). So a blanket `RUST_LOG=debug`
//! keeps them at `info`; an operator who really wants packet dumps names them
//! (`RUST_LOG=debug,socketioxide=debug`) and accepts that tokens reach the log.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Crates whose `debug`/`trace` lines contain client payloads (tokens included).
const PAYLOAD_LOGGERS: [&str; 2] = ["socketioxide", "engineioxide"];

/// The filter for `RUST_LOG` (`None`: unset): default `info`, and the payload loggers
/// capped at `info` unless the value names them.
pub fn filter_directives(rust_log: Option<&str>) -> String {
    let base = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("info");
    let mut directives = base.to_string();
    for target in PAYLOAD_LOGGERS {
        if !base.contains(target) {
            directives.push_str(&format!(",{target}=info"));
        }
    }
    directives
}

/// Installs the global subscriber: level from `RUST_LOG` (default `info`, see the module
/// docs for the payload loggers), text or JSON lines on stderr.
pub fn init(format: LogFormat) {
    let directives = filter_directives(std::env::var("RUST_LOG").ok().as_deref());
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_loggers_stay_at_info_unless_named() {
        assert_eq!(
            filter_directives(None),
            "info,socketioxide=info,engineioxide=info"
        );
        assert_eq!(
            filter_directives(Some("debug")),
            "debug,socketioxide=info,engineioxide=info"
        );
        assert_eq!(
            filter_directives(Some("debug,socketioxide=trace")),
            "debug,socketioxide=trace,engineioxide=info"
        );
    }
}
