//! A small SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT). It records each message and can be told to answer a code or to stall at a stage.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

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

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: HashMap<Stage, VecDeque<Act>>,
    connections: usize,
}

pub struct SmtpSink {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.lock().unwrap().connections += 1;
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        SmtpSink { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The next time `stage` comes, do `act` instead of the usual answer.
    pub fn script(&self, stage: Stage, act: Act) {
        self.state.lock().unwrap().script.entry(stage).or_default().push_back(act);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The code to answer at `stage`: the script's, after any stall, or `usual`.
async fn decide(state: &Mutex<State>, stage: Stage, usual: u16) -> u16 {
    loop {
        let act = state.lock().unwrap().script.get_mut(&stage).and_then(VecDeque::pop_front);
        match act {
            None => return usual,
            Some(Act::Reply(code)) => return code,
            Some(Act::Stall(wait)) => tokio::time::sleep(wait).await,
        }
    }
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

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut tx = Received::default();
    loop {
        let mut buf = Vec::new();
        if read.read_until(b'\n', &mut buf).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&buf).trim_end().to_owned();
        let verb = command.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => "250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n".to_owned(),
            "HELO" | "NOOP" => line(250),
            "RSET" => {
                tx = Received::default();
                line(250)
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
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
                    tx.data = read_data(&mut read).await?;
                    let code = decide(&state, Stage::EndOfData, 250).await;
                    if code < 300 {
                        state.lock().unwrap().received.push(std::mem::take(&mut tx));
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
async fn read_data(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<String> {
    let mut data = Vec::new();
    loop {
        let mut buf = Vec::new();
        if read.read_until(b'\n', &mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if buf == b".\r\n" {
            break;
        }
        let unstuffed = if buf.starts_with(b"..") { &buf[1..] } else { &buf[..] };
        data.extend_from_slice(unstuffed);
    }
    let text = String::from_utf8_lossy(&data);
    Ok(text.strip_suffix("\r\n").unwrap_or(&text).to_owned())
}
