//! Hejnał's integration tests: one binary, real SQLite, PostgreSQL and Redis, the app on
//! port 0 and the `hejnal` binary as child processes.

mod helpers;

mod attacks;
mod channels;
mod cli;
mod http;
mod notices;
mod officials;
mod processes;
mod queue;
mod residents;
mod shutdown;
mod store;
mod surveys;
mod testkit;
