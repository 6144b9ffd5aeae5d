//! Redis for the tests: a fresh `redis:7.2` container per test (testcontainers), plain or
//! TLS-only with a test CA ([`TestPki`]), removed on drop.

use anyhow::Context;
use testcontainers::core::{ExecCommand, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, CopyTargetOptions, GenericImage, ImageExt};

/// A Redis server in a container (testcontainers; image `redis:7.2`), removed on drop.
pub struct TestRedis {
    container: ContainerAsync<GenericImage>,
    port: u16,
    /// `redis://127.0.0.1:PORT` (`rediss://` for [`TestRedis::start_tls`]).
    pub url: String,
}

impl TestRedis {
    /// Starts a fresh Redis.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// Starts a fresh Redis with extra `redis-server` arguments (e.g. `--requirepass`).
    pub async fn start_with(args: &[&str]) -> anyhow::Result<Self> {
        let container = redis_image(&[], args)
            .start()
            .await
            .context("start the redis:7.2 container (is Docker running and the image present?)")?;
        Self::on(container, "redis").await
    }

    /// Starts a Redis that speaks only TLS (`--port 0 --tls-port 6379`) with the server
    /// certificate of `pki`, plus extra `args`; `url` is `rediss://127.0.0.1:PORT`.
    pub async fn start_tls(pki: &TestPki, args: &[&str]) -> anyhow::Result<Self> {
        let tls = [
            "--port",
            "0",
            "--tls-port",
            "6379",
            "--tls-cert-file",
            "/tls/server.crt",
            "--tls-key-file",
            "/tls/server.key",
            "--tls-ca-cert-file",
            "/tls/ca.crt",
            "--tls-auth-clients",
            "no",
        ];
        let mut image = redis_image(&tls, args);
        for (path, pem) in [
            ("/tls/ca.crt", &pki.ca_pem),
            ("/tls/server.crt", &pki.cert_pem),
            ("/tls/server.key", &pki.key_pem),
        ] {
            image = image.with_copy_to(
                CopyTargetOptions::new(path).with_mode(0o644),
                pem.as_bytes().to_vec(),
            );
        }
        let container = image
            .start()
            .await
            .context("start a TLS redis:7.2 container")?;
        Self::on(container, "rediss").await
    }

    async fn on(container: ContainerAsync<GenericImage>, scheme: &str) -> anyhow::Result<Self> {
        let port = container.get_host_port_ipv4(6379.tcp()).await?;
        Ok(Self {
            container,
            port,
            url: format!("{scheme}://127.0.0.1:{port}"),
        })
    }

    /// The host port the container's Redis was published on when it started.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The container, for fault tests (stop, start, pause).
    pub fn container(&self) -> &ContainerAsync<GenericImage> {
        &self.container
    }

    /// Runs `redis-cli ARGS...` inside the container and returns its output.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        redis_cli(&self.container, args).await
    }

    /// A connected fred client of this Redis (to publish what no node would).
    pub async fn client(&self) -> anyhow::Result<fred::clients::Client> {
        use fred::interfaces::ClientLike;
        let config = fred::types::config::Config::from_url(&self.url)?;
        let client = fred::clients::Client::new(config, None, None, None);
        client.init().await?;
        Ok(client)
    }
}

/// `redis:7.2` running `redis-server FIRST... ARGS...`, port 6379 exposed, started once
/// it accepts connections.
fn redis_image(first: &[&str], args: &[&str]) -> testcontainers::ContainerRequest<GenericImage> {
    let cmd: Vec<String> = std::iter::once("redis-server")
        .chain(first.iter().copied())
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect();
    GenericImage::new("redis", "7.2")
        .with_exposed_port(6379.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
        .with_cmd(cmd)
}

/// Runs `redis-cli ARGS...` inside a Redis `container` and returns its output.
pub async fn redis_cli(
    container: &ContainerAsync<GenericImage>,
    args: &[&str],
) -> anyhow::Result<String> {
    let mut cmd = vec!["redis-cli"];
    cmd.extend_from_slice(args);
    let mut res = container.exec(ExecCommand::new(cmd)).await?;
    let out = res.stdout_to_vec().await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A CA and a server certificate for `127.0.0.1`/`localhost` signed by it, all PEM, made
/// fresh for a test (rcgen).
pub struct TestPki {
    /// The CA certificate (what clients trust).
    pub ca_pem: String,
    /// The server certificate.
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
}

impl TestPki {
    /// Generates a CA named `name` and a server certificate signed by it.
    pub fn generate(name: &str) -> anyhow::Result<Self> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "redis test server");
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
