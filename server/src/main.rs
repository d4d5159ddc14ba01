//! The chat server binary: configuration, logging, bind, run.

use anyhow::Context;
use clap::Parser;
use server::{AppState, Config};
use std::io::Write;
use tracing_subscriber::EnvFilter;

/// `server admin …`: the operator's commands on the data directory (or on
/// Redis, in cluster mode).
#[derive(clap::Parser)]
#[command(
    name = "server admin",
    about = "Operator commands on the data directory, or on Redis in cluster mode"
)]
struct AdminCli {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Subcommand)]
enum AdminCommand {
    /// Makes NAME a server administrator; the password is the first line
    /// of standard input (e.g. `read -s pw && echo "$pw" | server admin create root`).
    Create {
        /// The account's name (the sign-up rules apply).
        name: String,
        /// The data directory the server uses.
        #[arg(long, default_value = "data")]
        data_dir: std::path::PathBuf,
        /// Cluster mode: the servers' Redis (the account is made there;
        /// `--data-dir` is not used). Takes the servers' own `--redis`,
        /// `--redis-cluster`, `--redis-ca`, `--redis-cert` and `--redis-key`.
        #[command(flatten)]
        redis: RedisArgs,
    },
}

/// Where cluster mode's Redis is, as the server takes it.
#[derive(clap::Args)]
struct RedisArgs {
    #[arg(long, value_name = "URL", conflicts_with = "redis_cluster")]
    redis: Option<String>,
    #[arg(long, value_name = "URLS")]
    redis_cluster: Option<String>,
    #[arg(long, value_name = "FILE")]
    redis_ca: Option<std::ffi::OsString>,
    #[arg(long, value_name = "FILE")]
    redis_cert: Option<std::ffi::OsString>,
    #[arg(long, value_name = "FILE")]
    redis_key: Option<std::ffi::OsString>,
}

impl RedisArgs {
    /// The server's cluster settings for these arguments, if any.
    fn cluster(&self) -> anyhow::Result<Option<server::config::ClusterConfig>> {
        let mut args: Vec<std::ffi::OsString> = vec!["server".into()];
        let given = [
            ("--redis", self.redis.clone().map(Into::into)),
            (
                "--redis-cluster",
                self.redis_cluster.clone().map(Into::into),
            ),
            ("--redis-ca", self.redis_ca.clone()),
            ("--redis-cert", self.redis_cert.clone()),
            ("--redis-key", self.redis_key.clone()),
        ];
        for (flag, value) in given {
            if let Some(value) = value {
                args.push(flag.into());
                args.push(value);
            }
        }
        Ok(Config::try_parse_from(args)?.cluster())
    }
}

async fn admin(args: impl Iterator<Item = std::ffi::OsString>) -> anyhow::Result<()> {
    let cli = AdminCli::parse_from(args);
    match cli.command {
        AdminCommand::Create {
            name,
            data_dir,
            redis,
        } => {
            let password = server::admin::password_line(std::io::stdin().lock())
                .context("cannot read the password from standard input")?;
            let (accounts, place): (std::sync::Arc<dyn server::accounts::Accounts>, String) =
                match redis.cluster()? {
                    Some(cluster) => (
                        std::sync::Arc::new(
                            server::cluster::RedisAccounts::open(&cluster)
                                .context("cannot reach Redis")?,
                        ),
                        "Redis".to_owned(),
                    ),
                    None => (
                        std::sync::Arc::new(
                            server::sqlite::SqliteAccounts::open(&data_dir).with_context(|| {
                                format!("cannot open the accounts in {}", data_dir.display())
                            })?,
                        ),
                        data_dir.display().to_string(),
                    ),
                };
            let made = server::admin::create(accounts, &name, &password)
                .await
                .with_context(|| format!("cannot make '{name}' an administrator"))?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "administrator '{made}' created in {place}")?;
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args_os().nth(1).is_some_and(|a| a == "admin") {
        return admin(std::env::args_os().skip(1)).await;
    }
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    // Opened before listening: a store that cannot be used stops start-up.
    let backend = match config.cluster() {
        Some(settings) => Backend::Cluster(
            server::cluster::Cluster::start(settings)
                .await
                .with_context(|| "cannot start cluster mode (--redis redis://host:port/db, or rediss:// for TLS)")?,
        ),
        None => Backend::Store(AppState::open_store(&config).with_context(|| {
            format!(
                "cannot open the history store in {} (use --data-dir to choose another place, or --in-memory)",
                config.data_dir.display()
            )
        })?),
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    // Scripts read this line to learn the address (the port may be 0).
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}")?;
    out.flush()?;
    drop(out);
    tracing::info!(%addr, "listening");

    let state = match backend {
        Backend::Cluster(cluster) => AppState::with_cluster(config, cluster),
        Backend::Store(store) => AppState::with_store(config, store),
    };
    server::run(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Where history lives: this process's store, or Redis shared with others.
enum Backend {
    Store(std::sync::Arc<dyn server::history::HistoryStore>),
    Cluster(std::sync::Arc<server::cluster::Cluster>),
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
}
