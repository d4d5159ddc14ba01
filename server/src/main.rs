//! The chat server binary: configuration, logging, bind, run.

use anyhow::Context;
use clap::Parser;
use server::{AppState, Config};
use std::io::Write;
use tracing_subscriber::EnvFilter;

/// `server admin …`: the operator's commands on the data directory.
#[derive(clap::Parser)]
#[command(
    name = "server admin",
    about = "Operator commands on the data directory"
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
    },
}

async fn admin(args: impl Iterator<Item = std::ffi::OsString>) -> anyhow::Result<()> {
    let cli = AdminCli::parse_from(args);
    match cli.command {
        AdminCommand::Create { name, data_dir } => {
            let password = server::admin::password_line(std::io::stdin().lock())
                .context("cannot read the password from standard input")?;
            let accounts = server::sqlite::SqliteAccounts::open(&data_dir)
                .with_context(|| format!("cannot open the accounts in {}", data_dir.display()))?;
            let made = server::admin::create(std::sync::Arc::new(accounts), &name, &password)
                .await
                .with_context(|| format!("cannot make '{name}' an administrator"))?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "administrator '{made}' created in {}",
                data_dir.display()
            )?;
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
