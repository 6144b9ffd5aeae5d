//! `sio-emit`: emit a Socket.IO event into a cluster from a shell script or cron job.
//!
//! ```text
//! sio-emit --redis redis://127.0.0.1:6379 [--redis-ca-file ca.pem] [--prefix socket.io] [--nsp /] \
//!          [--redis-mode classic|sharded|...|streams] \
//!          [--stream-name socket.io] [--stream-count 1] [--stream-max-len 10000] \
//!          [--to ROOM]... [--except ROOM]... [--volatile] EVENT [JSON_ARG]...
//! echo '{"text":"hi"} 42' | sio-emit --redis ... --to user:42 notice -
//! ```
//!
//! In streams mode (`@socket.io/redis-streams-adapter`) the event is `XADD`ed to the
//! namespace's stream, which the `--stream-*` options (the adapter's `streamName`,
//! `streamCount`, `maxLen`) must name as the cluster does; other modes ignore them.
//!
//! Each `JSON_ARG` is one argument; `-` reads the arguments from stdin as a sequence of
//! JSON values. Exit codes: 0 sent, 2 bad usage / bad JSON / bad URL, 1 Redis failure.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use sio_emitter::{EmitError, Emitter};
use sio_protocol::streams::{DEFAULT_MAX_LEN, DEFAULT_STREAM_COUNT, DEFAULT_STREAM_NAME};
use sio_protocol::{AdapterMode, StreamsOptions, SubscriptionMode};

/// Emit a Socket.IO event into a sio-cluster (or Node.js socket.io) cluster via Redis.
#[derive(Debug, Parser)]
#[command(name = "sio-emit", version)]
struct Cli {
    /// Redis URL of the cluster.
    #[arg(long, env = "SIO_REDIS_URL", hide_env_values = true)]
    redis: String,
    /// Channel prefix of the cluster (the adapter's `key`).
    #[arg(long, env = "SIO_REDIS_PREFIX", default_value = "socket.io")]
    prefix: String,
    /// The cluster's mode: classic, sharded (= sharded-dynamic), sharded-dynamic-private,
    /// sharded-static or streams.
    #[arg(long, env = "SIO_REDIS_MODE", default_value = "classic")]
    redis_mode: String,
    /// Streams mode: the cluster's stream name (`streamName`).
    #[arg(long, env = "SIO_REDIS_STREAM_NAME", default_value = DEFAULT_STREAM_NAME)]
    stream_name: String,
    /// Streams mode: how many streams the cluster spreads its namespaces over (`streamCount`).
    #[arg(long, env = "SIO_REDIS_STREAM_COUNT", default_value_t = DEFAULT_STREAM_COUNT)]
    stream_count: u32,
    /// Streams mode: the approximate length each entry trims its stream to (`maxLen`).
    #[arg(long, env = "SIO_REDIS_STREAM_MAX_LEN", default_value_t = DEFAULT_MAX_LEN)]
    stream_max_len: u64,
    /// PEM file of the CA(s) a `rediss://` server must chain to (default: system roots).
    #[arg(long, env = "SIO_REDIS_CA_FILE")]
    redis_ca_file: Option<std::path::PathBuf>,
    /// Namespace.
    #[arg(long, default_value = "/")]
    nsp: String,
    /// Target room (repeat for several); none means every socket of the namespace.
    #[arg(long = "to")]
    to: Vec<String>,
    /// Excluded room (repeat for several).
    #[arg(long = "except")]
    except: Vec<String>,
    /// Allow the event to be dropped for clients not ready to receive it.
    #[arg(long)]
    volatile: bool,
    /// Event name.
    event: String,
    /// Arguments, one JSON value each; `-` reads JSON values from stdin.
    args: Vec<String>,
}

/// clap's error as one line: the message and what it lists, without the usage block.
fn one_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let parts: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join(" ").trim_start_matches("error: ").to_string()
}

fn parse_args(raw: &[String]) -> Result<Vec<serde_json::Value>, String> {
    if raw.len() == 1 && raw[0] == "-" {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        return serde_json::Deserializer::from_str(&input)
            .into_iter::<serde_json::Value>()
            .collect::<Result<_, _>>()
            .map_err(|e| format!("stdin is not a sequence of JSON values: {e}"));
    }
    raw.iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::from_str(a)
                .map_err(|e| format!("argument {} is not JSON ({e}): {a}", i + 1))
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("sio-emit: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let args = match parse_args(&cli.args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sio-emit: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sio-emit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mode = match parse_mode(&cli.redis_mode) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("sio-emit: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(send(&cli, mode, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ EmitError::Url(_)) => {
            eprintln!("sio-emit: --redis: {e}");
            ExitCode::from(2)
        }
        Err(EmitError::Redis(e))
            if matches!(
                e.kind(),
                fred::error::ErrorKind::Url | fred::error::ErrorKind::Config
            ) =>
        {
            eprintln!("sio-emit: --redis: invalid Redis URL: {e}");
            ExitCode::from(2)
        }
        Err(e @ (EmitError::ReservedEvent(_) | EmitError::Tls(_))) => {
            eprintln!("sio-emit: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("sio-emit: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_mode(mode: &str) -> Result<AdapterMode, String> {
    Ok(match mode {
        "classic" => AdapterMode::Classic,
        "sharded" | "sharded-dynamic" => AdapterMode::Sharded(SubscriptionMode::Dynamic),
        "sharded-dynamic-private" => AdapterMode::Sharded(SubscriptionMode::DynamicPrivate),
        "sharded-static" => AdapterMode::Sharded(SubscriptionMode::Static),
        "streams" => AdapterMode::Streams,
        other => return Err(format!("--redis-mode: unknown mode {other:?}")),
    })
}

async fn send(cli: &Cli, mode: AdapterMode, args: Vec<serde_json::Value>) -> Result<(), EmitError> {
    let emitter = Emitter::connect_with_ca(&cli.redis, cli.redis_ca_file.as_deref())
        .await?
        .with_prefix(cli.prefix.clone())
        .with_mode(mode)
        .with_streams(StreamsOptions {
            stream_name: cli.stream_name.clone(),
            stream_count: cli.stream_count,
            max_len: cli.stream_max_len,
        });
    let mut op = emitter.of(&cli.nsp);
    for room in &cli.to {
        op = op.to(room.clone());
    }
    for room in &cli.except {
        op = op.except(room.clone());
    }
    if cli.volatile {
        op = op.volatile();
    }
    op.emit(&cli.event, args).await?;
    let _ = fred::interfaces::ClientLike::quit(emitter.client()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn modes_by_name() {
        assert_eq!(parse_mode("streams"), Ok(AdapterMode::Streams));
        assert_eq!(parse_mode("classic"), Ok(AdapterMode::Classic));
        assert!(parse_mode("stream").is_err());
    }

    #[test]
    fn stream_options_default_to_nodes() {
        let cli = Cli::try_parse_from(["sio-emit", "--redis", "redis://x", "ev"]).unwrap();
        assert_eq!(
            (
                cli.stream_name.as_str(),
                cli.stream_count,
                cli.stream_max_len
            ),
            ("socket.io", 1, 10_000)
        );
    }

    #[test]
    fn json_args_are_parsed_one_each() {
        let got = parse_args(&["1".into(), "\"a\"".into(), "{\"k\":[true]}".into()]).unwrap();
        assert_eq!(
            got,
            [
                serde_json::json!(1),
                serde_json::json!("a"),
                serde_json::json!({"k": [true]})
            ]
        );
        let err = parse_args(&["{bad".into()]).unwrap_err();
        assert!(err.contains("argument 1 is not JSON"), "{err}");
    }
}
