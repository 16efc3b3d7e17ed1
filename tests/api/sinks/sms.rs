//! An HTTP SMS gateway fake (axum on port 0). It records every request and answers from a
//! script; with nothing scripted it accepts, in the shape of the provider it plays.

use std::{
    collections::{HashMap, VecDeque},
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
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
}

pub struct SmsGateway {
    addr: SocketAddr,
    state: Arc<Mutex<Gateway>>,
    task: JoinHandle<()>,
}

impl SmsGateway {
    pub async fn start(style: Style) -> SmsGateway {
        let state = Arc::new(Mutex::new(Gateway { style, requests: vec![], script: VecDeque::new() }));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        SmsGateway { addr, state, task }
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer the next request with `reply`.
    pub fn then(&self, reply: Reply) {
        self.state.lock().unwrap().script.push_back(reply);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for SmsGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(state): State<Arc<Mutex<Gateway>>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let mut gw = state.lock().unwrap();
        let n = gw.requests.len() + 1;
        gw.requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let style = gw.style;
        gw.script.pop_front().unwrap_or_else(|| accepted(style, n))
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(axum::http::HeaderName::try_from(name).unwrap(), value.parse().unwrap());
    }
    response
}

/// The provider's usual success, with a fresh id.
fn accepted(style: Style, n: usize) -> Reply {
    match style {
        Style::Webhook => Reply::new(200, format!(r#"{{"id":"gw-{n}"}}"#)),
        Style::Smsapi => Reply::new(200, format!(r#"{{"count":1,"list":[{{"id":"{n}","points":0.16,"status":"QUEUE"}}]}}"#)),
        Style::Twilio => Reply::new(201, format!(r#"{{"sid":"SM{n:032}","status":"queued"}}"#)),
    }
    .header("content-type", "application/json")
}
