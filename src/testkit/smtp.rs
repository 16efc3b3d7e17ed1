//! A small SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT). It records each message and can be told to answer a code or to stall at a stage.
//!
//! Replies are buffered and written once every command already received has been answered, so a
//! client that pipelines (RFC 2920) gets one segment per group, and one that does not is
//! answered exactly as before. Sockets have TCP_NODELAY, so no reply waits for a delayed ACK.

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
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf},
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
#[derive(Debug, Clone, Copy, Default)]
pub struct SmtpOptions {
    pub keep: Keep,
    /// Offer PIPELINING in the EHLO answer (for the bench's bare client; lettre does not pipeline).
    pub offer_pipelining: bool,
}

struct State {
    options: SmtpOptions,
    received: Tally<Received>,
    script: Mutex<HashMap<Stage, VecDeque<Act>>>,
    /// Acts that repeat at a stage, once its script is used up: `None` is the usual answer.
    patterns: Mutex<HashMap<Stage, (Vec<Option<Act>>, usize)>>,
    connections: AtomicUsize,
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

/// The code to answer at `stage`: the script's, after any stall, or the pattern's, or `usual`.
async fn decide(state: &State, stage: Stage, usual: u16) -> u16 {
    loop {
        let scripted = state.script.lock().unwrap().get_mut(&stage).and_then(VecDeque::pop_front);
        match scripted {
            Some(Act::Reply(code)) => return code,
            // A scripted stall is followed by the next scripted act, if any.
            Some(Act::Stall(wait)) => tokio::time::sleep(wait).await,
            None => break,
        }
    }
    let from_pattern = next_in_pattern(state, stage);
    match from_pattern {
        Some(Act::Reply(code)) => code,
        Some(Act::Stall(wait)) => {
            tokio::time::sleep(wait).await;
            usual
        }
        None => usual,
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
    let (mut read, mut write) = (BufReader::new(read), BufWriter::new(write));
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut tx = Received::default();
    let mut buf = Vec::new();
    loop {
        // Everything received so far is answered: send the answers before waiting for more.
        if read.buffer().is_empty() {
            write.flush().await?;
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
                tx = Received::default();
                line(250)
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return write.flush().await;
            }
            "MAIL" => {
                let code = decide(&state, Stage::Mail, 250).await;
                if code < 300 {
                    tx = Received { mail_from: argument(&command), ..Received::default() };
                }
                line(code)
            }
            "RCPT" => {
                let code = decide(&state, Stage::Rcpt, 250).await;
                if code < 300 {
                    tx.rcpt_to.push(argument(&command));
                }
                line(code)
            }
            "DATA" => {
                let code = decide(&state, Stage::Data, 354).await;
                if code != 354 {
                    line(code)
                } else {
                    write.write_all(line(354).as_bytes()).await?;
                    write.flush().await?;
                    let data = read_data(&mut read).await?;
                    let code = decide(&state, Stage::EndOfData, 250).await;
                    if code < 300 {
                        let tx = std::mem::take(&mut tx);
                        state.received.record(&data, || Received { data: data_text(&data), ..tx });
                    }
                    line(code)
                }
            }
            _ => "502 command not implemented\r\n".to_owned(),
        };
        write.write_all(reply.as_bytes()).await?;
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
