//! `/metrics` in Prometheus text, and the middleware that counts requests by route and status.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use hejnal_jobs::Lane;

use super::AppState;

/// Count every request under its route template (never the raw path: ids would explode the
/// number of series).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("hejnal_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("hejnal_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Prometheus text. Queue depths and memory are read at scrape time.
pub async fn render(State(state): State<AppState>) -> Response {
    for lane in Lane::ALL {
        match state.queue.backlog().depth(lane).await {
            Ok(depth) => {
                for (name, n) in [("queued", depth.queued), ("released", depth.released), ("running", depth.running), ("dead", depth.dead)] {
                    metrics::gauge!("hejnal_queue_depth", "lane" => lane.as_str(), "state" => name).set(n as f64);
                }
            }
            Err(e) => tracing::warn!(%lane, error = %e, "queue depth unavailable for metrics"),
        }
    }
    crate::memory::report_to_metrics();
    let body = crate::telemetry::metrics_handle().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}
