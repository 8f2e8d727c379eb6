//! The `partyd` binary: parse the command line, load the configuration, open storage, serve
//! until SIGINT/SIGTERM, then shut down gracefully.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use partyd::config::{Cli, Config};
use partyd::error::StartError;
use partyd::storage::SledStorage;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("partyd: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing();
    match actix_web::rt::System::new().block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "partyd stopped");
            eprintln!("partyd: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), StartError> {
    let storage = SledStorage::open(&config.data_dir)?;
    tracing::info!(data_dir = %config.data_dir.display(), config = %config.source.display(), "storage open");
    for party in config.parties.values() {
        tracing::info!(party = %party.name, kind = %party.kind, store_path = %party.store_path, "serving party");
    }
    let server = partyd::start(config, storage)?;
    tracing::info!("partyd listening on {}", server.addr());
    wait_for_stop_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn wait_for_stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match terminate.as_mut() {
            Some(signal) => drop(signal.recv().await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm => {}
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
