//! The fault suite (`cargo test --test faults`). Each scenario starts the service as separate
//! `hejnal` processes (an API and workers) on a PostgreSQL and a Redis of its own, started on
//! free ports, with the SMS gateway fake in this process; it drives at least 10,000 deliveries,
//! injects one real fault, and checks the promises with SQL over `deliveries` and
//! `delivery_events` and with the gateway's own log. `docs/reliability.md` has the table of
//! scenarios and what they measured. It never skips: a missing server binary fails it.

mod harness;

mod double_clicks;
mod postgres_cut;
mod providers_misbehave;
mod receipts;
mod redis_lost;
mod redis_paused;
mod skewed_schedulers;
mod sms_failover;
mod worker_killed;
