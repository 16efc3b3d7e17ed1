//! The `hejnal` command. Output that scripts read (tokens, VAPID keys) goes to standard
//! output alone; everything else goes to standard error.

mod officials;
mod vapid;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{
    app::{self, Application, Role},
    config::Config,
    telemetry,
};

#[derive(Parser)]
#[command(name = "hejnal", version, about = "Hejnał: emergency alerts, planned-change notices and surveys for a city's residents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: the API, the workers and the scheduler (embedded default: SQLite).
    Serve,
    /// Run only the HTTP API (scale-out: run several, behind a load balancer).
    Api,
    /// Run only the queue workers (scale-out: run several, on several hosts).
    Worker,
    /// Bring the database schema up to date and exit. Safe to run repeatedly and concurrently.
    Migrate,
    /// Print a new VAPID key pair for web push, as two HEJNAL_VAPID_* lines.
    VapidKeygen,
    /// Manage city officials.
    #[command(subcommand)]
    Officials(officials::OfficialsCommand),
    /// Manage officials' API tokens.
    #[command(subcommand)]
    Tokens(officials::TokensCommand),
    /// Measure the queue against the configured database and broker (see docs/performance.md).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
}

pub fn main() -> ExitCode {
    crate::memory::limit_malloc_arenas();
    let cli = Cli::parse();
    if let Command::VapidKeygen = cli.command {
        return vapid::keygen();
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logs(&config.log_level, config.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            // One line for the operator, with the chain of causes.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => serve(config, Role::Serve).await,
        Command::Api => serve(config, Role::Api).await,
        Command::Worker => serve(config, Role::Worker).await,
        Command::Migrate => {
            let config = Config { migrate_on_start: true, ..config };
            let store = app::open_store(&config).await?;
            eprintln!("database is up to date ({})", store.backend());
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Officials(cmd) => officials::run_officials(cmd, config).await,
        Command::Tokens(cmd) => officials::run_tokens(cmd, config).await,
        Command::Bench(args) => crate::bench::run(args, config).await,
        Command::VapidKeygen => unreachable!("handled before configuration is read"),
    }
}

async fn serve(config: Config, role: Role) -> anyhow::Result<ExitCode> {
    tracing::info!(?config, ?role, "starting");
    crate::memory::trim_freed_memory_periodically();
    let app = Application::build(config, role).await?;
    let stop = app.stop_token();
    tokio::spawn(async move {
        app::shutdown_signal().await;
        stop.cancel();
    });
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}
