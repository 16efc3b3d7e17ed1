//! `hejnal bench`: measurements against the configured database and broker. Speed is
//! measured here, never by timed assertions in tests; the numbers go to docs/performance.md.
//! Point it at a throwaway database: it leaves its data behind.

mod estimate;
mod queue;

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand, Debug, Clone)]
pub enum BenchCommand {
    /// A flood of routine jobs, and emergencies pushed while it drains.
    Queue(queue::QueueArgs),
    /// The audience estimate over N synthetic residents.
    Estimate(estimate::EstimateArgs),
}

pub async fn run(cmd: BenchCommand, config: Config) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Queue(args) => queue::run(args, config).await,
        BenchCommand::Estimate(args) => estimate::run(args, config).await,
    }
}
