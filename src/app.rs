//! Wiring: build the store, the queue and the HTTP server for one process role, run them
//! until told to stop, then stop them in order.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use hejnal_jobs::Queue;

use crate::{
    channels::Channels,
    config::Config,
    http::{self, AppState, ratelimit::PublicLimiter},
    messages::Messages,
    pages::Pages,
    residents::{self, ResidentsCtx, secrets::LinkSigner},
    store::{self, DynStore},
    surveys::batcher::AnswerBatcher,
    worker::Handlers,
};

/// What a process runs. `Serve` is the embedded default: everything in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Serve,
    Api,
    Worker,
}

impl Role {
    fn serves_http(self) -> bool {
        matches!(self, Role::Serve | Role::Api)
    }

    fn runs_workers(self) -> bool {
        matches!(self, Role::Serve | Role::Worker)
    }
}

pub struct Application {
    role: Role,
    listener: Option<TcpListener>,
    state: AppState,
    stop: CancellationToken,
}

/// Open the store named in the config and bring its schema up to date when asked to.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    let store = store::connect(&config.database_url, config.database_max_connections)
        .await
        .with_context(|| format!("cannot open the database at DATABASE_URL={}", hejnal_jobs::broker::redact(&config.database_url)))?;
    if config.migrate_on_start {
        store.migrate().await.context("cannot migrate the database")?;
    }
    Ok(store)
}

/// Channels, templates and link keys: what resident work needs, built once per process.
pub async fn build_residents(config: &Config, store: &DynStore) -> anyhow::Result<residents::SharedResidents> {
    let channels = Channels::from_config(&config.channels)?;
    let dev = channels.dev_outbox_channels();
    if !dev.is_empty() {
        let names: Vec<&str> = dev.iter().map(|k| k.as_str()).collect();
        tracing::warn!(channels = ?names, "NO PROVIDER for these channels: messages are only RECORDED in the dev outbox (/dev/outbox), NOT DELIVERED");
    }
    let key = residents::link_key(store, config.secret_key.as_deref()).await.context("cannot read the link key")?;
    Ok(Arc::new(ResidentsCtx {
        store: store.clone(),
        channels,
        messages: Messages::new(),
        links: LinkSigner::new(&key),
        public_url: config.public_url.clone(),
        sms_daily_budget: config.sms_daily_budget,
        answers: AnswerBatcher::start(store.clone(), AnswerBatcher::in_flight_for(store, config.answer_commits), config.answer_commit_period),
        surveys: Default::default(),
    }))
}

impl Application {
    pub async fn build(mut config: Config, role: Role) -> anyhow::Result<Application> {
        // Install the recorder before anything counts, or early counts go nowhere.
        crate::telemetry::metrics_handle();
        let store = open_store(&config).await?;
        let queue = Queue::connect(config.queue.clone(), store.backlog())
            .await
            .with_context(|| format!("cannot open the queue at HEJNAL_QUEUE_URL={}", hejnal_jobs::broker::redact(&config.queue.url)))?;
        let listener = if role.serves_http() {
            let listener = TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on HEJNAL_LISTEN={}", config.listen))?;
            // A public URL defaulted from `127.0.0.1:0` must carry the port actually bound, or
            // every link in every message would point nowhere.
            if config.public_url.port() == Some(0) {
                let _ = config.public_url.set_port(Some(listener.local_addr()?.port()));
            }
            if config.keep_cores_awake {
                crate::cores_awake::keep_awake_in_bursts();
            }
            if config.nice < 0 {
                crate::cpu_priority::raise_once(config.nice);
            }
            Some(listener)
        } else {
            None
        };
        let residents = build_residents(&config, &store).await?;
        let limiter = PublicLimiter::new(config.public_rate_per_minute, config.public_rate_burst);
        let comment_limiter = PublicLimiter::per_hour(config.comment_rate_per_hour);
        let state = AppState { config: Arc::new(config), store, queue, residents, pages: Arc::new(Pages::new()), limiter, comment_limiter };
        Ok(Application { role, listener, state, stop: CancellationToken::new() })
    }

    /// The bound port; tests listen on port 0 and ask.
    pub fn port(&self) -> Option<u16> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port())
    }

    /// Cancel it to stop the process gracefully.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application { role, listener, state, stop } = self;
        let pump_stop = CancellationToken::new();
        let pump = state.queue.spawn_pump(pump_stop.clone());
        let http = listener.map(|listener| {
            let app = http::app(state.clone());
            let stop = stop.clone();
            let public_url = state.config.public_url.clone();
            tokio::spawn(async move {
                tracing::info!(addr = %listener.local_addr()?, %public_url, "HTTP listening");
                let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<std::net::SocketAddr>(app);
                // Each response leaves at once, whatever its size: with Nagle's algorithm a
                // response's last partial segment can wait for the client's delayed ACK (40 ms).
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await
            })
        });
        if role.runs_workers() {
            tokio::spawn(schedule_housekeeping(state.queue.clone(), stop.clone()));
            let handlers = Handlers::new(state.store.clone(), state.residents.clone(), state.queue.clone(), state.config.delivery.clone());
            tokio::spawn(crate::notices::sweeper::run(handlers.notices.clone(), stop.clone()));
            let handlers = Arc::new(handlers);
            state.queue.run_workers(handlers, stop.clone()).await?;
        }
        if let Some(http) = http {
            http.await??;
        }
        // The pump stops last, so that work finished during the drain frees room for nothing new.
        pump_stop.cancel();
        let _ = pump.await;
        // Last: every request, job and the pump are done with the database and the broker.
        state.queue.close().await;
        state.store.close().await;
        tracing::info!(?role, "stopped");
        Ok(())
    }
}

/// Hourly: queue the purge of unverified sign-ups. Several workers may queue it; running it
/// twice deletes nothing twice.
async fn schedule_housekeeping(queue: hejnal_jobs::Queue, stop: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => return,
        }
        let job = hejnal_jobs::NewJob::now(hejnal_jobs::Lane::Routine, hejnal_jobs::Job::PurgeUnverifiedV1);
        if let Err(e) = queue.push(&[job]).await {
            tracing::warn!(error = %e, "could not queue the purge of unverified sign-ups");
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}
