//! The SMTP server's ceiling: a bare client over several connections with TCP_NODELAY, each
//! pipelining (RFC 2920) a message's end with the next one's MAIL, RCPT and DATA, so that a
//! message costs one round trip. lettre, which the service uses, takes four.

use std::net::SocketAddr;

use anyhow::{Context, ensure};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter},
    net::{TcpStream, tcp::{OwnedReadHalf, OwnedWriteHalf}},
};
use tokio_util::sync::CancellationToken;

pub(super) const CLIENT: &str = "raw SMTP, pipelined, 8 connections";
const CONNECTIONS: usize = 8;
const ENVELOPE: &[u8] = b"MAIL FROM:<noreply@krakow.pl>\r\nRCPT TO:<resident@example.com>\r\nDATA\r\n";

pub(super) async fn blast(addr: SocketAddr, stop: CancellationToken) -> anyhow::Result<()> {
    let connections = (0..CONNECTIONS).map(|_| tokio::spawn(one_connection(addr, stop.clone())));
    for result in futures::future::join_all(connections).await {
        result??;
    }
    Ok(())
}

async fn one_connection(addr: SocketAddr, stop: CancellationToken) -> anyhow::Result<()> {
    let stream = TcpStream::connect(addr).await.context("connect to the SMTP sink")?;
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let (mut read, mut write) = (BufReader::new(read), BufWriter::new(write));
    expect(&mut read, 220).await?;
    send(&mut write, &[b"EHLO bench.local\r\n"]).await?;
    expect(&mut read, 250).await?;
    send(&mut write, &[ENVELOPE]).await?;
    expect_envelope(&mut read).await?;
    let message = message();
    while !stop.is_cancelled() {
        send(&mut write, &[&message, b".\r\n", ENVELOPE]).await?;
        expect(&mut read, 250).await?;
        expect_envelope(&mut read).await?;
    }
    send(&mut write, &[b".\r\nQUIT\r\n"]).await?;
    Ok(())
}

async fn send(write: &mut BufWriter<OwnedWriteHalf>, parts: &[&[u8]]) -> anyhow::Result<()> {
    for part in parts {
        write.write_all(part).await?;
    }
    Ok(write.flush().await?)
}

/// The answers to MAIL, RCPT and DATA.
async fn expect_envelope(read: &mut BufReader<OwnedReadHalf>) -> anyhow::Result<()> {
    expect(read, 250).await?;
    expect(read, 250).await?;
    expect(read, 354).await
}

/// One reply, all its lines, with this code.
async fn expect(read: &mut BufReader<OwnedReadHalf>, code: u16) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        ensure!(read.read_line(&mut line).await? > 0, "the SMTP sink closed the connection");
        ensure!(line.starts_with(&code.to_string()), "expected {code}, the SMTP sink said {:?}", line.trim_end());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// A plain-text notice of about the size the service sends, ending in CRLF, with no line
/// that starts with a dot.
fn message() -> Vec<u8> {
    let body = "Awaria wodociagu w Podgorzu: ul. Kalwaryjska 1-40 bez wody do 18:00.\r\n".repeat(10);
    format!(
        "From: Hejnal Krakow <noreply@krakow.pl>\r\nTo: resident@example.com\r\nSubject: Awaria wodociagu\r\n\
         Date: Mon, 1 Jun 2026 12:00:00 +0000\r\nMessage-ID: <ceiling@krakow.pl>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\
         List-Unsubscribe: <https://hejnal.example/u/token>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n{body}"
    )
    .into_bytes()
}
