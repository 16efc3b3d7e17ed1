//! One mail transaction (MAIL, RCPT, DATA, the message) on a pooled connection. When the server
//! offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out as one write and their three answers
//! are read after it: two round trips per message instead of four. lettre's own `send` always
//! waits for each answer in turn (`hejnal bench broadcast`: see docs/performance.md).

use std::fmt;

use lettre::{
    address::Envelope,
    transport::smtp::{
        Error as SmtpError,
        client::AsyncSmtpConnection,
        commands::{Data, Mail, Rcpt},
        extension::{Extension, MailBodyParameter, MailParameter},
        response::Response,
    },
};

/// A connection and what its server offers beyond what lettre reads.
pub(crate) struct SmtpConnection {
    conn: AsyncSmtpConnection,
    pipelining: bool,
}

/// Why a transaction did not end in acceptance.
#[derive(Debug)]
pub(crate) enum TransactionError {
    /// No answer came to MAIL: the connection was already dead. Nothing of the message left
    /// (its content goes only after DATA is answered), so it may be tried on another one.
    Unanswered(SmtpError),
    /// An answer refused a step, or the connection failed later.
    Failed(SmtpError),
    /// We refuse to send it: it needs an extension the server lacks.
    Unsupported(String),
}

impl SmtpConnection {
    pub(crate) fn new(conn: AsyncSmtpConnection, pipelining: bool) -> SmtpConnection {
        SmtpConnection { conn, pipelining }
    }

    pub(crate) fn has_broken(&self) -> bool {
        self.conn.has_broken()
    }

    /// Send one message. After any error the connection must not be used again: the server
    /// may still be inside the transaction.
    pub(crate) async fn send(&mut self, envelope: &Envelope, data: &[u8]) -> Result<Response, TransactionError> {
        let mail = Mail::new(envelope.from().cloned(), self.mail_parameters(envelope, data)?);
        let rcpts: Vec<Rcpt> = envelope.to().iter().map(|to| Rcpt::new(to.clone(), vec![])).collect();
        if self.pipelining {
            self.commands_at_once(&mail, &rcpts).await?;
        } else {
            self.commands_in_turn(&mail, &rcpts).await?;
        }
        self.conn.message(data).await.map_err(TransactionError::Failed)
    }

    /// SMTPUTF8 for addresses beyond ASCII, 8BITMIME for such content, as lettre's `send` does.
    fn mail_parameters(&self, envelope: &Envelope, data: &[u8]) -> Result<Vec<MailParameter>, TransactionError> {
        let info = self.conn.server_info();
        let mut parameters = vec![];
        if envelope.from().into_iter().chain(envelope.to()).any(|a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii()) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(TransactionError::Unsupported("an address is not ASCII and the server does not offer SMTPUTF8".into()));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !data.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(TransactionError::Unsupported("the message is not ASCII and the server does not offer 8BITMIME".into()));
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(parameters)
    }

    async fn commands_in_turn(&mut self, mail: &Mail, rcpts: &[Rcpt]) -> Result<(), TransactionError> {
        self.conn.command(mail).await.map_err(first_answer)?;
        for rcpt in rcpts {
            self.conn.command(rcpt).await.map_err(TransactionError::Failed)?;
        }
        self.conn.command(Data).await.map_err(TransactionError::Failed)?;
        Ok(())
    }

    /// One write, then every answer in order: all of them are read even after a refusal, so
    /// that the first refusal is the one reported.
    async fn commands_at_once(&mut self, mail: &Mail, rcpts: &[Rcpt]) -> Result<(), TransactionError> {
        let mut refusal = match self.conn.command(Group { mail, rcpts }).await.map_err(first_answer) {
            Ok(_) => None,
            Err(unanswered @ TransactionError::Unanswered(_)) => return Err(unanswered),
            Err(refused) => Some(refused),
        };
        for _ in 0..=rcpts.len() {
            match self.conn.read_response().await {
                Ok(_) => {}
                Err(e) if e.status().is_none() => return Err(refusal.unwrap_or(TransactionError::Failed(e))),
                Err(e) => {
                    refusal.get_or_insert(TransactionError::Failed(e));
                }
            }
        }
        // A server that answered DATA with 354 after a refusal now waits for content: the caller
        // drops the connection, which ends the transaction without a message.
        refusal.map_or(Ok(()), Err)
    }
}

/// The answer to MAIL (or to a group starting with it): without a status, none came.
fn first_answer(e: SmtpError) -> TransactionError {
    if e.status().is_none() && !e.is_client() { TransactionError::Unanswered(e) } else { TransactionError::Failed(e) }
}

/// MAIL, each RCPT and DATA as one command text, each line ending in CRLF.
struct Group<'a> {
    mail: &'a Mail,
    rcpts: &'a [Rcpt],
}

impl fmt::Display for Group<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mail)?;
        for rcpt in self.rcpts {
            write!(f, "{rcpt}")?;
        }
        write!(f, "{Data}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_the_three_commands_in_order() {
        let address = |s: &str| s.parse::<lettre::Address>().unwrap();
        let mail = Mail::new(Some(address("noreply@krakow.pl")), vec![]);
        let rcpts = [Rcpt::new(address("ola@example.com"), vec![])];
        let text = Group { mail: &mail, rcpts: &rcpts }.to_string();
        assert_eq!(text, "MAIL FROM:<noreply@krakow.pl>\r\nRCPT TO:<ola@example.com>\r\nDATA\r\n");
    }
}
