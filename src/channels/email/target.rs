//! The SMTP server from `HEJNAL_SMTP_URL`, and opening one connection to it.
//!
//! URL forms, as lettre's `from_url` reads them (plus `tls=starttls` as a synonym):
//! - `smtp://host[:25]`: plain SMTP, for a relay on the same host or network;
//! - `smtp://host[:587]?tls=required` (or `starttls`): STARTTLS, refused without it;
//! - `smtp://host[:587]?tls=opportunistic`: STARTTLS when the server offers it;
//! - `smtps://host[:465]`: TLS from the first byte.
//!
//! `user:password@` (percent-encoded) adds AUTH; a path names our EHLO host.
//!
//! We open the TCP socket ourselves to set TCP_NODELAY: lettre writes the message and the final
//! `.` as two writes, and with Nagle's algorithm on, the second waits for the server's delayed
//! ACK (about 40 ms per message; see MEASUREMENTS.md). lettre's own transport offers no hook.
//! The socket also holds writes back until the next read (`stream.rs`), so those two writes,
//! and a pipelined group of commands, leave as one.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use lettre::transport::smtp::{
    authentication::{Credentials, DEFAULT_MECHANISMS},
    client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters},
    commands::Ehlo,
    extension::ClientId,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream, rustls};

use super::{stream::WriteOnRead, transaction::SmtpConnection};

type Socket = WriteOnRead<TcpStream>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    StartTls { required: bool },
    ImplicitTls,
}

#[derive(Clone)]
pub(crate) struct SmtpTarget {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
}

impl SmtpTarget {
    /// Read the URL. Errors never repeat the URL, which may hold a password.
    pub(crate) fn parse(raw: &str) -> Result<SmtpTarget, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let mut tls_param = None;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tls" => tls_param = Some(value.into_owned()),
                other => return Err(format!("has an unknown parameter {other:?} (only tls is known)")),
            }
        }
        let (security, default_port) = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None) => (Security::Plain, 25),
            ("smtp", Some("required" | "starttls")) => (Security::StartTls { required: true }, 587),
            ("smtp", Some("opportunistic")) => (Security::StartTls { required: false }, 587),
            ("smtp", Some(other)) => return Err(format!("has tls={other:?}; use required, starttls or opportunistic")),
            ("smtps", None) => (Security::ImplicitTls, 465),
            ("smtps", Some(_)) => return Err("is smtps:// (TLS from the start); leave out tls=".into()),
            (other, _) => return Err(format!("has scheme {other:?}; use smtp:// or smtps://")),
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(password)) => Some(Credentials::new(decode(user)?, decode(password)?)),
            (_, None) => return Err("has a user but no password".into()),
        };
        let name = url.path().trim_matches('/');
        let hello = if name.is_empty() { ClientId::default() } else { ClientId::Domain(name.to_owned()) };
        Ok(SmtpTarget { host, port: url.port().unwrap_or(default_port), security, credentials, hello })
    }

    /// Connect, greet, secure and authenticate: a connection ready for a transaction.
    /// Errors are texts: whatever fails here is the path to the server, never the message.
    pub(crate) async fn connect(&self) -> Result<SmtpConnection, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", self.host, self.port))?;
        tcp.set_nodelay(true).map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
        let tcp = WriteOnRead::new(tcp);
        let stream: Box<dyn AsyncTokioStream> = match self.security {
            Security::ImplicitTls => Box::new(self.wrap_tls(tcp).await?),
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| format!("greeting failed: {e}"))?;
        if let Security::StartTls { required } = self.security
            && (required || conn.can_starttls())
        {
            let parameters = TlsParameters::new(self.host.clone()).map_err(|e| format!("TLS setup: {e}"))?;
            conn.starttls(parameters, &self.hello).await.map_err(|e| format!("STARTTLS failed: {e}"))?;
        }
        // lettre reads the EHLO answer but keeps only the extensions it uses, and PIPELINING is
        // not one of them: ask again (before AUTH, which a new EHLO must not undo).
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).await.map_err(|e| format!("EHLO failed: {e}"))?;
        let pipelining = ehlo.message().any(|line| line.split(' ').next().is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING")));
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await.map_err(|e| format!("authentication failed: {e}"))?;
        }
        Ok(SmtpConnection::new(conn, pipelining))
    }

    async fn wrap_tls(&self, tcp: Socket) -> Result<TlsTcp, String> {
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| format!("{} is not a TLS server name: {e}", self.host))?;
        let tls = TlsConnector::from(tls_config()).connect(name, tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
        Ok(TlsTcp(tls))
    }
}

/// The same trust as lettre's STARTTLS: the webpki roots, the ring provider.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    Arc::clone(config)
}

fn decode(part: &str) -> Result<String, String> {
    percent_decode(part).ok_or_else(|| "has a user or password that is not valid percent-encoded UTF-8".into())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl AsyncTokioStream for Socket {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().peer_addr()
    }
}

/// A TLS stream in the shape lettre takes for a connection it did not open.
#[derive(Debug)]
struct TlsTcp(TlsStream<Socket>);

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> (String, u16, Security, Option<String>) {
        let t = SmtpTarget::parse(url).unwrap();
        (t.host, t.port, t.security, t.credentials.map(|_| "creds".to_owned()))
    }

    #[test]
    fn smtp_urls_choose_port_and_tls_like_lettre() {
        assert_eq!(parsed("smtp://127.0.0.1:2525"), ("127.0.0.1".into(), 2525, Security::Plain, None));
        assert_eq!(parsed("smtp://relay.example"), ("relay.example".into(), 25, Security::Plain, None));
        assert_eq!(
            parsed("smtp://u:p%40ss@relay.example?tls=starttls"),
            ("relay.example".into(), 587, Security::StartTls { required: true }, Some("creds".into()))
        );
        assert_eq!(parsed("smtp://relay.example?tls=opportunistic").2, Security::StartTls { required: false });
        assert_eq!(parsed("smtps://relay.example").1, 465);
        assert_eq!(parsed("smtp://[::1]:25").0, "::1");
    }

    #[test]
    fn wrong_smtp_urls_are_explained_without_the_password() {
        for url in ["http://relay", "smtp://relay?tls=maybe", "smtp://relay?pool=3", "smtps://relay?tls=required", "smtp://user@relay", "smtp://"] {
            let err = SmtpTarget::parse(url).err().unwrap_or_else(|| panic!("{url} accepted"));
            assert!(!err.is_empty());
        }
        let err = SmtpTarget::parse("smtp://u:hunter2@relay?tls=no").err().unwrap();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn percent_decoding_handles_reserved_characters() {
        assert_eq!(percent_decode("p%40ss%3Aword").as_deref(), Some("p@ss:word"));
        assert_eq!(percent_decode("bad%4"), None);
    }
}
