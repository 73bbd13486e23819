//! The `calltrail` binary as the benchmark runs it: `admin create-user`, `serve` as a child
//! process on a free loopback port, and `replay`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The release `calltrail` binary: `$CALLTRAIL_BIN`, else the one beside this executable
/// (`scripts/bench` builds both into `target/release`).
pub fn calltrail_bin() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("CALLTRAIL_BIN") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()
            .context("cannot locate this executable")?
            .with_file_name(format!("calltrail{}", std::env::consts::EXE_SUFFIX)),
    };
    anyhow::ensure!(
        path.is_file(),
        "{} does not exist: build it with `cargo build --release -p calltrail` (or set CALLTRAIL_BIN)",
        path.display()
    );
    Ok(path)
}

/// A `calltrail` command against `database_url`, logging at `info` whatever `RUST_LOG` says
/// (a per-webhook debug line would measure the logger).
pub fn calltrail(database_url: &str) -> anyhow::Result<Command> {
    let mut command = Command::new(calltrail_bin()?);
    command
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(command)
}

/// A tenant created with `calltrail admin create-user`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tenant {
    /// The tenant id (every event's `tenant_id`).
    pub user_id: Uuid,
    /// The secret in the webhook URL.
    pub webhook_token: String,
    /// The read API's (and the console's sign-in) key.
    pub api_key: String,
}

/// Creates a tenant in the database through the binary, as an operator would.
pub async fn create_user(database_url: &str) -> anyhow::Result<Tenant> {
    let email = format!("bench-{}@calltrail.local", Uuid::new_v4().simple());
    let output = calltrail(database_url)?
        .args(["admin", "create-user", "--email", &email])
        .output()
        .await
        .context("cannot run calltrail admin create-user")?;
    anyhow::ensure!(
        output.status.success(),
        "calltrail admin create-user failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .context("calltrail admin create-user printed nothing")?;
    serde_json::from_str(line)
        .with_context(|| format!("unexpected output of calltrail admin create-user: {line}"))
}

/// Stores `secret` as the tenant's webhook signing secret for `provider` through the binary
/// (`calltrail admin set-provider-secret`, encrypted under `secrets_key`), as an operator would.
pub async fn set_provider_secret(
    database_url: &str,
    secrets_key: &str,
    tenant: &Tenant,
    provider: &str,
    secret: &str,
) -> anyhow::Result<()> {
    let user = tenant.user_id.to_string();
    let output = calltrail(database_url)?
        .args([
            "admin",
            "set-provider-secret",
            "--user",
            &user,
            "--provider",
            provider,
        ])
        .args(["--secret", secret])
        .env("CALLTRAIL_SECRETS_KEY", secrets_key)
        .env("CALLTRAIL_PUBLIC_URL", "http://127.0.0.1")
        .output()
        .await
        .context("cannot run calltrail admin set-provider-secret")?;
    anyhow::ensure!(
        output.status.success(),
        "calltrail admin set-provider-secret failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// A free loopback port (bound and released: another process could take it in between, which
/// would make the server fail to start with a clear message).
fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// `calltrail serve` running as a child process.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
}

impl Server {
    /// Starts `serve` (with or without its projector) on a free loopback port, its output in
    /// `log`, and waits until `/readyz` answers 200 (at most 60 s).
    pub async fn start(database_url: &str, projector: bool, log: &Path) -> anyhow::Result<Server> {
        Self::start_with(database_url, projector, &[], log).await
    }

    /// Like [`Server::start`]; with `worker_env` non-empty the analysis workers run too, with
    /// those environment variables (`OPENAI_*`, `CALLTRAIL_ANALYSIS_WORKERS`).
    pub async fn start_with(
        database_url: &str,
        projector: bool,
        worker_env: &[(&str, String)],
        log: &Path,
    ) -> anyhow::Result<Server> {
        Self::spawn(
            database_url,
            projector,
            !worker_env.is_empty(),
            worker_env,
            log,
        )
        .await
    }

    /// Like [`Server::start`], with more environment (`CALLTRAIL_SECRETS_KEY`, …) and no
    /// analysis workers.
    pub async fn start_env(
        database_url: &str,
        projector: bool,
        env: &[(&str, String)],
        log: &Path,
    ) -> anyhow::Result<Server> {
        Self::spawn(database_url, projector, false, env, log).await
    }

    async fn spawn(
        database_url: &str,
        projector: bool,
        workers: bool,
        env: &[(&str, String)],
        log: &Path,
    ) -> anyhow::Result<Server> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = calltrail(database_url)?;
        command.arg("serve").env("CALLTRAIL_BIND", addr.to_string());
        if !workers {
            command.arg("--no-worker");
        }
        for (key, value) in env {
            command.env(key, value);
        }
        if !projector {
            command.arg("--no-projector");
        }
        let child = command
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("cannot start calltrail serve")?;
        let pid = child.id().context("calltrail serve exited at once")?;
        let mut server = Server { child, pid, addr };
        server.wait_ready(log).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, log: &Path) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("http://{}/readyz", self.addr);
        for _ in 0..240 {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "calltrail serve exited ({status}) before it was ready; see {}",
                    log.display()
                );
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        anyhow::bail!(
            "calltrail serve was not ready within 60 s; see {}",
            log.display()
        )
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Asks it to stop (SIGTERM: graceful shutdown) and waits, killing it after 30 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let term = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        if term.is_ok_and(|s| s.success()) {
            if let Ok(status) =
                tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await
            {
                let status = status?;
                anyhow::ensure!(status.success(), "calltrail serve stopped with {status}");
                return Ok(());
            }
        }
        self.child
            .kill()
            .await
            .context("cannot kill calltrail serve")?;
        anyhow::bail!("calltrail serve did not stop within 30 s of SIGTERM; killed")
    }
}
