//! The `partyd` binary: parse the command line, load the configuration, then either run an
//! offline command (export, import, dump, recover, check-config) or open storage and serve until
//! SIGINT/SIGTERM.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use partyd::config::{Cli, Command, Config, LogFormat};
use partyd::error::StartError;
use partyd::storage::SledStorage;

/// jemalloc: less CPU per delivery than glibc's malloc under fan-out load (its allocations
/// and frees were ~7 % of the worker's samples) without the larger idle footprint of mimalloc.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("partyd: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::CheckConfig) = &cli.command {
        print!("{}", check_config_summary(&config));
        return ExitCode::SUCCESS;
    }
    init_tracing(cli.log_format);
    if let Some(command) = &cli.command {
        return offline(&config, command);
    }
    match actix_web::rt::System::new().block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "partyd stopped");
            eprintln!("partyd: {error}");
            ExitCode::FAILURE
        }
    }
}

fn offline(config: &Config, command: &Command) -> ExitCode {
    let stdout = std::io::stdout();
    let result = match command {
        Command::Export { party, room } => {
            partyd::cli::export(config, party.as_deref(), room.as_deref(), &mut stdout.lock())
                .map(|count| eprintln!("partyd: exported {count} rooms"))
        }
        Command::Import { replace } => partyd::cli::import(config, *replace, std::io::stdin().lock())
            .map(|count| eprintln!("partyd: imported {count} rooms")),
        Command::Dump { party, room } => partyd::cli::dump(config, party, room, &mut stdout.lock()),
        Command::Recover => partyd::storage::recover::recover(&config.data_dir)
            .map(|report| print!("{report}"))
            .map_err(partyd::cli::CliError::from),
        Command::CheckConfig => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("partyd: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), StartError> {
    let stop_signals = StopSignals::install();
    match partyd::rlimit::raise_open_files_limit() {
        Ok(limit) if limit.was < limit.soft => tracing::info!(
            soft = limit.soft,
            hard = limit.hard,
            "open files limit raised from a soft limit of {} to the hard limit of {}",
            limit.was,
            limit.hard
        ),
        Ok(limit) => tracing::info!(
            soft = limit.soft,
            hard = limit.hard,
            "open files limit: soft {}, hard {}",
            limit.soft,
            limit.hard
        ),
        Err(error) => tracing::warn!(%error, "cannot raise the limit of open files; each connection is one"),
    }
    let storage =
        SledStorage::open_with(&config.data_dir, config.group_commit, config.storage_reserve_bytes)?;
    tracing::info!(data_dir = %config.data_dir.display(), config = %config.source.display(), "storage open");
    if config.parties.is_empty() {
        tracing::warn!("no parties are configured: every room request will answer 404");
    }
    for party in config.parties.values() {
        tracing::info!(party = %party.name, kind = %party.kind, store_path = %party.store_path, auth = ?party.auth, "serving party");
        if party.auth != partyd::config::AuthConfig::None && party.allowed_origins.is_none() {
            tracing::warn!(party = %party.name, "auth is on but allowed_origins is not set: websockets from any origin may connect");
        }
    }
    if config.admin_token.is_some() {
        tracing::info!("admin API enabled under /_partyd/");
    }
    let server = partyd::start(config, storage)?;
    tracing::info!("partyd listening on {}", server.addr());
    partyd::systemd::notify_ready();
    stop_signals.wait().await;
    tracing::info!("shutting down");
    partyd::systemd::notify_stopping();
    server.shutdown().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// What `partyd check-config` prints for a valid configuration: where it would listen and keep
/// its data, and each party.
fn check_config_summary(config: &Config) -> String {
    let mut summary = format!(
        "{}: valid\nlisten {}\ndata dir {}\n",
        config.source.display(),
        config.listen,
        config.data_dir.display()
    );
    for party in config.parties.values() {
        summary
            .push_str(&format!("party {} ({}, store path {})\n", party.name, party.kind, party.store_path));
    }
    if config.parties.is_empty() {
        summary.push_str("no parties: every room request would answer 404\n");
    }
    summary
}

/// SIGTERM and SIGINT, caught from before partyd listens: a service manager may stop it the
/// moment it is told partyd is ready, and the default action would kill it mid-start.
struct StopSignals {
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let installed = |kind| match signal(kind) {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::warn!(%error, "cannot catch a stop signal; it will end partyd without a graceful stop");
                None
            }
        };
        Self { terminate: installed(SignalKind::terminate()), interrupt: installed(SignalKind::interrupt()) }
    }

    async fn wait(mut self) {
        async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => drop(signal.recv().await),
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = received(self.terminate.as_mut()) => {}
            _ = received(self.interrupt.as_mut()) => {}
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): as chosen, else pretty for people on
/// a terminal and JSON lines for machines everywhere else.
fn init_tracing(format: Option<LogFormat>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(terminal);
    let default = if terminal { LogFormat::Pretty } else { LogFormat::Json };
    match format.unwrap_or(default) {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
