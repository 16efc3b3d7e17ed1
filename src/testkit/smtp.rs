//! A small SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT). It records each message and can be told to answer a code or to stall at a stage.
//!
//! Replies are buffered and written once every command already received has been answered, so a
//! client that pipelines (RFC 2920) gets one segment per group, and one that does not is
//! answered exactly as before. Sockets have TCP_NODELAY, so no reply waits for a delayed ACK.
//! It offers PIPELINING, as the relays a city sends through do (Postfix, Exim, the big
//! providers), unless bound without it; it counts the groups of commands it answered at once.

use std::{
    collections::{HashMap, VecDeque},
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter},
    net::{TcpListener, TcpStream, tcp::{OwnedReadHalf, OwnedWriteHalf}},
    task::JoinHandle,
};

use super::{Keep, Watch, tally::Tally};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Mail,
    Rcpt,
    Data,
    /// After the final `.`: the answer that accepts or refuses the message.
    EndOfData,
}

#[derive(Debug, Clone, Copy)]
pub enum Act {
    Reply(u16),
    /// Wait this long, then answer as usual.
    Stall(Duration),
    /// Close the connection without answering (a server that timed out an idle client).
    Close,
}

#[derive(Debug, Clone, Default)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-unstuffed, without the final `.`.
    pub data: String,
}

impl Received {
    /// Header lines, unfolded, up to the first empty line.
    pub fn headers(&self) -> Vec<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match lines.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
                _ => lines.push(line.to_owned()),
            }
        }
        lines
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers().into_iter().find(|l| l.to_ascii_lowercase().starts_with(&prefix)).map(|l| l[prefix.len()..].trim().to_owned())
    }
}

/// How the server behaves beyond the protocol itself.
#[derive(Debug, Clone, Copy)]
pub struct SmtpOptions {
    pub keep: Keep,
    /// Offer PIPELINING in the EHLO answer.
    pub offer_pipelining: bool,
}

impl Default for SmtpOptions {
    fn default() -> SmtpOptions {
        SmtpOptions { keep: Keep::default(), offer_pipelining: true }
    }
}

struct State {
    options: SmtpOptions,
    received: Tally<Received>,
    script: Mutex<HashMap<Stage, VecDeque<Act>>>,
    /// Acts that repeat at a stage, once its script is used up: `None` is the usual answer.
    patterns: Mutex<HashMap<Stage, (Vec<Option<Act>>, usize)>>,
    connections: AtomicUsize,
    /// Times the answers to more than one command went out together.
    groups: AtomicUsize,
}

pub struct SmtpSink {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// A server that keeps every message, for tests. Panics if it cannot bind a port.
    pub async fn start() -> SmtpSink {
        SmtpSink::bind(SmtpOptions::default()).await.expect("the SMTP sink binds a local port")
    }

    pub async fn bind(options: SmtpOptions) -> io::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            options,
            received: Tally::new(options.keep),
            script: Mutex::new(HashMap::new()),
            patterns: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            groups: AtomicUsize::new(0),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        Ok(SmtpSink { addr, state, task })
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next time `stage` comes, do `act` instead of the usual answer.
    pub fn script(&self, stage: Stage, act: Act) {
        self.state.script.lock().unwrap().entry(stage).or_default().push_back(act);
    }

    /// From now on, when nothing is scripted for `stage`, act from `acts` in turn, over and
    /// over (`None` is the usual answer); an empty list stops it. E.g. at `EndOfData`,
    /// `[Some(Reply(451)), None]` defers every other message, `[Some(Stall(30 s))]` stalls all.
    pub fn pattern(&self, stage: Stage, acts: Vec<Option<Act>>) {
        self.state.patterns.lock().unwrap().insert(stage, (acts, 0));
    }

    /// The messages kept (all of them, unless the sink was bound to keep fewer).
    pub fn received(&self) -> Vec<Received> {
        self.state.received.kept()
    }

    /// Every message accepted, kept or not.
    pub fn count(&self) -> u64 {
        self.state.received.count()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// Times a client sent several commands before reading an answer (pipelining) and got
    /// their answers together.
    pub fn pipelined_groups(&self) -> usize {
        self.state.groups.load(Ordering::Relaxed)
    }

    /// Count the accepted messages whose content (headers and body) contains the watch's marker.
    pub fn add_watch(&self, watch: &Arc<Watch>) {
        self.state.received.add_watch(watch);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The code to answer at `stage`: the script's, after any stall, or the pattern's, or `usual`;
/// None to close the connection instead.
async fn decide(state: &State, stage: Stage, usual: u16) -> Option<u16> {
    loop {
        let scripted = state.script.lock().unwrap().get_mut(&stage).and_then(VecDeque::pop_front);
        match scripted {
            Some(Act::Reply(code)) => return Some(code),
            Some(Act::Close) => return None,
            // A scripted stall is followed by the next scripted act, if any.
            Some(Act::Stall(wait)) => tokio::time::sleep(wait).await,
            None => break,
        }
    }
    let from_pattern = next_in_pattern(state, stage);
    match from_pattern {
        Some(Act::Reply(code)) => Some(code),
        Some(Act::Close) => None,
        Some(Act::Stall(wait)) => {
            tokio::time::sleep(wait).await;
            Some(usual)
        }
        None => Some(usual),
    }
}

/// Answers written but not yet sent; counts the groups sent.
struct Answers<'a> {
    write: BufWriter<OwnedWriteHalf>,
    waiting: usize,
    state: &'a State,
}

impl Answers<'_> {
    async fn add(&mut self, reply: &str) -> io::Result<()> {
        self.waiting += 1;
        self.write.write_all(reply.as_bytes()).await
    }

    async fn send(&mut self) -> io::Result<()> {
        if self.waiting > 1 {
            self.state.groups.fetch_add(1, Ordering::Relaxed);
        }
        self.waiting = 0;
        self.write.flush().await
    }
}

fn next_in_pattern(state: &State, stage: Stage) -> Option<Act> {
    let mut patterns = state.patterns.lock().unwrap();
    let (acts, next) = patterns.get_mut(&stage).filter(|(acts, _)| !acts.is_empty())?;
    let act = acts[*next % acts.len()];
    *next += 1;
    act
}

fn line(code: u16) -> String {
    let text = match code {
        200..=299 => "OK",
        354 => "End data with <CR><LF>.<CR><LF>",
        400..=499 => "try again later",
        _ => "refused",
    };
    format!("{code} {text}\r\n")
}

fn ehlo(options: &SmtpOptions) -> String {
    let pipelining = if options.offer_pipelining { "250-PIPELINING\r\n" } else { "" };
    format!("250-sink.test\r\n{pipelining}250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n")
}

async fn serve(stream: TcpStream, state: Arc<State>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut answers = Answers { write: BufWriter::new(write), waiting: 0, state: &state };
    answers.write.write_all(b"220 sink.test ESMTP\r\n").await?;
    // The transaction under way: None until MAIL is taken.
    let mut tx: Option<Received> = None;
    let mut buf = Vec::new();
    loop {
        // Everything received so far is answered: send the answers before waiting for more.
        if read.buffer().is_empty() {
            answers.send().await?;
        }
        buf.clear();
        if read.read_until(b'\n', &mut buf).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&buf).trim_end().to_owned();
        let verb = command.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => ehlo(&state.options),
            "HELO" | "NOOP" => line(250),
            "RSET" => {
                tx = None;
                line(250)
            }
            "QUIT" => {
                answers.add("221 bye\r\n").await?;
                return answers.send().await;
            }
            "MAIL" => {
                let Some(code) = decide(&state, Stage::Mail, 250).await else { return Ok(()) };
                if code < 300 {
                    tx = Some(Received { mail_from: argument(&command), ..Received::default() });
                }
                line(code)
            }
            // After a refused MAIL: what a pipelining client sent behind it is refused too.
            "RCPT" | "DATA" if tx.is_none() => "503 need MAIL first\r\n".to_owned(),
            "RCPT" => {
                let Some(code) = decide(&state, Stage::Rcpt, 250).await else { return Ok(()) };
                if code < 300
                    && let Some(tx) = tx.as_mut()
                {
                    tx.rcpt_to.push(argument(&command));
                }
                line(code)
            }
            // No recipient taken: a pipelining client's DATA gets a refusal, not an invitation
            // to send content (RFC 2920 §3.1).
            "DATA" if tx.as_ref().is_some_and(|tx| tx.rcpt_to.is_empty()) => "554 no valid recipients\r\n".to_owned(),
            "DATA" => {
                let Some(code) = decide(&state, Stage::Data, 354).await else { return Ok(()) };
                if code != 354 {
                    line(code)
                } else {
                    answers.add(&line(354)).await?;
                    answers.send().await?;
                    let data = read_data(&mut read).await?;
                    let Some(code) = decide(&state, Stage::EndOfData, 250).await else { return Ok(()) };
                    let taken = tx.take().unwrap_or_default();
                    if code < 300 {
                        state.received.record(&data, || Received { data: data_text(&data), ..taken });
                    }
                    line(code)
                }
            }
            _ => "502 command not implemented\r\n".to_owned(),
        };
        answers.add(&reply).await?;
    }
}

/// `MAIL FROM:<a@b>` → `a@b`.
fn argument(command: &str) -> String {
    let after = command.split_once(':').map(|(_, a)| a).unwrap_or("");
    after.trim().trim_start_matches('<').split('>').next().unwrap_or("").to_owned()
}

/// Lines up to a lone `.`, with the leading dot of `..` lines removed (RFC 5321 §4.5.2).
async fn read_data(read: &mut BufReader<OwnedReadHalf>) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let start = data.len();
        if read.read_until(b'\n', &mut data).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = &data[start..];
        if line == b".\r\n" {
            data.truncate(start);
            return Ok(data);
        }
        if line.starts_with(b"..") {
            data.remove(start);
        }
    }
}

/// The message as text, without the CRLF that ends its last line.
fn data_text(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    text.strip_suffix("\r\n").unwrap_or(&text).to_owned()
}
