//! Hejnał: the notification and survey platform of a city contact centre.
//!
//! - `config`: layered settings, checked at start.
//! - `store`: SQLite and PostgreSQL behind one interface.
//! - `channels`: SMS, email and web push adapters behind one trait, and the dev outbox.
//! - `http`: the API (axum), its errors, health and metrics.
//! - `domain`: types that parse (email, phone, language, quiet hours).
//! - `residents`: sign-up, verification, preferences links, consent.
//! - `notices`: alerts and planned-change notices: approval, fan-out, delivery, sweeper.
//! - `messages`, `pages`: handlebars templates for messages and server-rendered pages.
//! - `worker`: what each queued job does.
//! - `app`: wiring of one process role (serve, api, worker).
//! - `cli`: the `hejnal` command; `memory`: the allocator's limits, set before it starts;
//!   `block_cache`: the global allocator (glibc's, hyper's read buffers kept per thread).
//! - `precise_sleep`: a sleep to the microsecond (tokio's timer counts in milliseconds).
//! - `bench`: `hejnal bench`, measurements with local sinks.
//! - `testkit`: those sinks (SMTP server, SMS gateway, push receiver), shared with the tests.
//!
//! The queue engine is its own crate, `hejnal-jobs` (`jobs/`).

pub mod app;
pub mod bench;
pub mod block_cache;
pub mod channels;
pub mod cli;
pub mod config;
pub mod cores_awake;
pub mod cpu_priority;
pub mod domain;
pub mod http;
pub mod memory;
pub mod messages;
pub mod notices;
pub mod pages;
pub mod precise_sleep;
pub mod residents;
pub mod store;
pub mod surveys;
pub mod telemetry;
pub mod testkit;
pub mod worker;

/// Every binary and test that links the service allocates through it, as `hejnal serve` does.
#[global_allocator]
static ALLOCATOR: block_cache::BlockCachingAllocator = block_cache::BlockCachingAllocator;
