//! `hejnal bench`: measurements against the configured database and broker. Speed is
//! measured here, never by timed assertions in tests; the numbers go to docs/performance.md.
//! Point it at a throwaway database: it leaves its data behind. The seeding and the officials'
//! desk are public because the fault suite (`tests/faults`) drives the service the same way.

mod broadcast;
mod estimate;
mod queue;
mod rss;
pub mod seed;
mod sinks;

pub use broadcast::{Desk, waiting};

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand, Debug, Clone)]
pub enum BenchCommand {
    /// A flood of routine jobs, and emergencies pushed while it drains.
    Queue(queue::QueueArgs),
    /// The audience estimate over N synthetic residents.
    Estimate(estimate::EstimateArgs),
    /// How fast each test sink (SMS gateway, SMTP server, push receiver) takes messages from a
    /// bare client: the ceiling for the broadcast bench.
    Sinks(sinks::SinksArgs),
    /// Routine campaigns to N residents over each channel, with emergencies while they drain,
    /// on a fresh database per backend, against the test sinks.
    Broadcast(broadcast::BroadcastArgs),
}

pub async fn run(cmd: BenchCommand, config: Config) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Queue(args) => queue::run(args, config).await,
        BenchCommand::Estimate(args) => estimate::run(args, config).await,
        BenchCommand::Sinks(args) => sinks::run(args).await,
        BenchCommand::Broadcast(args) => broadcast::run(args, config).await,
    }
}
