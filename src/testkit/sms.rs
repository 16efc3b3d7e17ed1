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
        let state = Arc::new(Gateway { style, requests: Tally::new(keep), script: Mutex::new(VecDeque::new()) });
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
    let n = gw.requests.record(&body, || Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let scripted = gw.script.lock().unwrap().pop_front();
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
