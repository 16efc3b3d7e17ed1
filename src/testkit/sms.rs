//! An HTTP SMS gateway fake (axum on port 0). It records every request and answers from a
//! script; with nothing scripted it accepts, in the shape of the provider it plays.

use std::{
    collections::{HashMap, VecDeque},
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use tokio::task::JoinHandle;

use super::{Keep, Watch, tally::Tally};

/// Which provider the fake plays when it accepts.
#[derive(Debug, Clone, Copy)]
pub enum Style {
    Webhook,
    Smsapi,
    Twilio,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
    /// The status the gateway answered (perhaps after the client stopped waiting): a 2xx
    /// means the gateway took the message, whatever the client learnt.
    pub status: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }

    /// The webhook request's `reference` (the delivery id), if it has one.
    pub fn reference(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.body).ok()?.get("reference")?.as_str().map(str::to_owned)
    }

    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply { status, headers: vec![], body: body.into(), delay: Duration::ZERO }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Answer only after this long (to outlast the client's timeout).
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

struct Gateway {
    style: Style,
    requests: Tally<Recorded>,
    script: Mutex<VecDeque<Reply>>,
    pattern: Mutex<Pattern>,
}

/// Answers that repeat, for faults that last: `None` is the usual acceptance.
#[derive(Default)]
struct Pattern {
    replies: Vec<Option<Reply>>,
    next: usize,
}

impl Pattern {
    fn next(&mut self) -> Option<Reply> {
        if self.replies.is_empty() {
            return None;
        }
        let reply = self.replies[self.next % self.replies.len()].clone();
        self.next += 1;
        reply
    }
}

pub struct SmsGateway {
    addr: SocketAddr,
    state: Arc<Gateway>,
    task: JoinHandle<()>,
}

impl SmsGateway {
    /// A gateway that keeps every request, for tests. Panics if it cannot bind a port.
    pub async fn start(style: Style) -> SmsGateway {
        SmsGateway::bind(style, Keep::All).await.expect("the SMS gateway binds a local port")
    }

    /// A gateway on a free local port that keeps what `keep` says.
    pub async fn bind(style: Style, keep: Keep) -> io::Result<SmsGateway> {
        let state = Arc::new(Gateway { style, requests: Tally::new(keep), script: Mutex::new(VecDeque::new()), pattern: Mutex::default() });
        let app = Router::new().fallback(handle).with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SmsGateway { addr, state, task })
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer the next request with `reply`.
    pub fn then(&self, reply: Reply) {
        self.state.script.lock().unwrap().push_back(reply);
    }

    /// From now on, when nothing is scripted, answer request after request from `replies` in
    /// turn, over and over; `None` in it is the usual acceptance, and an empty list stops it.
    /// E.g. `[Some(500)]` is a gateway that always fails, `[Some(500); 5]` then `[None; 20]`
    /// runs of five failures.
    pub fn pattern(&self, replies: Vec<Option<Reply>>) {
        *self.state.pattern.lock().unwrap() = Pattern { replies, next: 0 };
    }

    /// The requests kept (all of them, unless the gateway was bound to keep fewer).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.kept()
    }

    /// Every request that arrived, kept or not.
    pub fn count(&self) -> u64 {
        self.state.requests.count()
    }

    /// Count the requests whose body contains the watch's marker.
    pub fn add_watch(&self, watch: &Arc<Watch>) {
        self.state.requests.add_watch(watch);
    }
}

impl Drop for SmsGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(gw): State<Arc<Gateway>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let scripted = gw.script.lock().unwrap().pop_front().or_else(|| gw.pattern.lock().unwrap().next());
    // The id of an acceptance is the request's number, known once it is recorded.
    let status = scripted.as_ref().map_or_else(|| accepted(gw.style, 0).status, |r| r.status);
    let n = gw.requests.record(&body, || Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    let reply = scripted.unwrap_or_else(|| accepted(gw.style, n));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(axum::http::HeaderName::try_from(name).unwrap(), value.parse().unwrap());
    }
    response
}

/// The provider's usual success, with a fresh id.
fn accepted(style: Style, n: u64) -> Reply {
    match style {
        Style::Webhook => Reply::new(200, format!(r#"{{"id":"gw-{n}"}}"#)),
        Style::Smsapi => Reply::new(200, format!(r#"{{"count":1,"list":[{{"id":"{n}","points":0.16,"status":"QUEUE"}}]}}"#)),
        Style::Twilio => Reply::new(201, format!(r#"{{"sid":"SM{n:032}","status":"queued"}}"#)),
    }
    .header("content-type", "application/json")
}
