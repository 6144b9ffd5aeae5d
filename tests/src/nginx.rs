//! A real nginx (Debian's `/usr/sbin/nginx`) balancing over nodes on loopback.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::files::TempDir;

/// A real nginx in front of some nodes, on loopback, stopped on drop. Its own prefix
/// directory holds the generated config and logs.
pub struct Nginx {
    child: std::process::Child,
    _dir: TempDir,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// How nginx picks a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Plain round robin: no stickiness at all.
    RoundRobin,
    /// `ip_hash`: one client address always reaches one node.
    IpHash,
}

impl Nginx {
    /// Starts nginx balancing over `upstreams`.
    pub async fn start(upstreams: &[SocketAddr], balance: Balance) -> anyhow::Result<Self> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let dir = TempDir::create(&format!("sio-nginx-{port}"))?;
        std::fs::create_dir_all(dir.0.join("tmp"))?;
        let servers: String = upstreams
            .iter()
            .map(|a| format!("    server {a} max_fails=1 fail_timeout=30s;\n"))
            .collect();
        let hash = if balance == Balance::IpHash {
            "    ip_hash;\n"
        } else {
            ""
        };
        let d = dir.0.display();
        let conf = format!(
            r#"# one process: killing it (Drop) leaves no orphaned worker holding the port
master_process off;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  upstream sio {{
{hash}{servers}    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://sio;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 60s;
      proxy_buffering off;
      # a refused connection sent nothing: safe to try another node
      proxy_next_upstream error non_idempotent;
      proxy_next_upstream_tries 3;
    }}
  }}
}}
"#
        );
        std::fs::write(dir.0.join("nginx.conf"), conf)?;
        let child = std::process::Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(dir.0.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("run /usr/sbin/nginx (Debian: apt-get install nginx-light)")?;
        let nginx = Self {
            child,
            _dir: dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("nginx did not start listening");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
