//! `/metrics` in Prometheus text, and the middleware that counts requests by route and status.

use std::{cell::RefCell, collections::HashMap, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use hejnal_jobs::Lane;
use metrics::{Counter, Histogram};

use super::AppState;

/// Count every request under its route template (never the raw path: ids would explode the
/// number of series) and its method, one of the standard ones or `other` (a client may send
/// any token as a method, and each would be a new series).
pub async fn track(request: Request, next: Next) -> Response {
    crate::cores_awake::count_request();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    with_series(route, method, response.status(), |series| {
        series.requests.increment(1);
        series.duration.record(elapsed);
    });
    response
}

fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"];
    STANDARD.into_iter().find(|name| *name == method.as_str()).unwrap_or("other")
}

/// One route's series for one method and status.
struct Series {
    method: &'static str,
    status: StatusCode,
    requests: Counter,
    duration: Histogram,
}

thread_local! {
    /// The handles each thread has used, by route. Asking the recorder for a handle builds its
    /// key (labels, owned strings) and looks it up in a shared map on every request; a survey
    /// answer did that twice. Kept per thread, a request finds its handles without an
    /// allocation or a lock. The set is bounded: routes are templates, methods are named above.
    static SERIES: RefCell<HashMap<Box<str>, Vec<Series>>> = RefCell::new(HashMap::new());
}

fn with_series(route: &str, method: &'static str, status: StatusCode, use_it: impl FnOnce(&Series)) {
    SERIES.with_borrow_mut(|by_route| {
        if !by_route.contains_key(route) {
            by_route.insert(route.into(), Vec::new());
        }
        let of_route = by_route.get_mut(route).expect("inserted above");
        let at = match of_route.iter().position(|s| s.method == method && s.status == status) {
            Some(at) => at,
            None => {
                of_route.push(register(route, method, status));
                of_route.len() - 1
            }
        };
        use_it(&of_route[at]);
    });
}

fn register(route: &str, method: &'static str, status: StatusCode) -> Series {
    let route = route.to_owned();
    Series {
        method,
        status,
        requests: metrics::counter!("hejnal_http_requests_total", "route" => route.clone(), "method" => method, "status" => status.as_str().to_owned()),
        duration: metrics::histogram!("hejnal_http_request_duration_seconds", "route" => route, "method" => method),
    }
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

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, middleware, routing::any};
    use tower::ServiceExt;

    use super::*;

    fn count(text: &str, series: &str) -> f64 {
        text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
    }

    /// What an operator reads on `/metrics` after requests of several methods and statuses,
    /// sent from several threads: each series counts every request, whichever thread's
    /// handles counted it, and a made-up method is `other`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_are_counted_by_route_method_and_status_and_odd_methods_are_other() {
        let handle = crate::telemetry::metrics_handle();
        let app = Router::new()
            .route("/test/metrics/{id}", any(|axum::extract::Path(id): axum::extract::Path<u16>| async move { StatusCode::from_u16(id).unwrap() }))
            .layer(middleware::from_fn(track));
        let send = |method: &'static str, path: &'static str| {
            let app = app.clone();
            tokio::spawn(async move {
                let request = axum::http::Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
                app.oneshot(request).await.unwrap().status()
            })
        };
        let mut sent = Vec::new();
        for _ in 0..50 {
            sent.push(send("POST", "/test/metrics/201"));
            sent.push(send("GET", "/test/metrics/404"));
            sent.push(send("BREW", "/test/metrics/200"));
        }
        for s in sent {
            s.await.unwrap();
        }
        let text = handle.render();
        let route = "route=\"/test/metrics/{id}\"";
        assert_eq!(count(&text, &format!("hejnal_http_requests_total{{{route},method=\"POST\",status=\"201\"}}")), 50.0, "{text}");
        assert_eq!(count(&text, &format!("hejnal_http_requests_total{{{route},method=\"GET\",status=\"404\"}}")), 50.0, "{text}");
        assert_eq!(count(&text, &format!("hejnal_http_requests_total{{{route},method=\"other\",status=\"200\"}}")), 50.0, "{text}");
        assert!(!text.contains("BREW"), "{text}");
        assert_eq!(count(&text, &format!("hejnal_http_request_duration_seconds_count{{{route},method=\"POST\"}}")), 50.0, "{text}");
    }

    #[test]
    fn standard_methods_keep_their_names() {
        for name in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"] {
            assert_eq!(method_label(&Method::from_bytes(name.as_bytes()).unwrap()), name);
        }
        assert_eq!(method_label(&Method::from_bytes(b"PROPFIND").unwrap()), "other");
    }
}
