//! `hejnal officials add` and `hejnal tokens create|revoke`.

use std::{
    io::{BufRead, IsTerminal},
    process::ExitCode,
};

use anyhow::{Context, bail};
use argon2::{Argon2, PasswordHasher, password_hash::SaltString};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use clap::Subcommand;
use rand::RngCore;

use crate::{app, config::Config, residents::secrets::digest as token_digest, store::ROLES};

#[derive(Subcommand)]
pub enum OfficialsCommand {
    /// Create an official. The password is read from standard input when it is piped;
    /// otherwise a strong one is generated and printed once.
    Add {
        #[arg(long)]
        email: String,
        /// admin, author, approver or analyst.
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create an API token for an official and print it alone on standard output.
    Create {
        /// The official's email.
        #[arg(long)]
        official: String,
        /// Days until the token expires (default: HEJNAL_TOKEN_TTL_DAYS, 90).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Revoke a token; it stops working at once.
    Revoke {
        /// The token as printed by `tokens create`.
        token: String,
    },
}

pub async fn run_officials(cmd: OfficialsCommand, config: Config) -> anyhow::Result<ExitCode> {
    let OfficialsCommand::Add { email, role } = cmd;
    let email = email.trim().to_lowercase();
    if !looks_like_email(&email) {
        bail!("--email: {email:?} is not an email address");
    }
    if !ROLES.contains(&role.as_str()) {
        bail!("--role: {role:?} is not one of {}", ROLES.join(", "));
    }
    let (password, generated) = read_or_generate_password()?;
    if password.chars().count() < 12 {
        bail!("password: must be at least 12 characters");
    }
    let hash = hash_password(&password)?;
    let store = app::open_store(&config).await?;
    let added = store.add_official(&email, &role, &hash).await.context("cannot add the official");
    // Closed on failure too: SQLite checkpoints its log on close.
    store.close().await;
    added?;
    if generated {
        println!("{password}");
        eprintln!("official {email} ({role}) created; the password above is shown once");
    } else {
        eprintln!("official {email} ({role}) created");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_tokens(cmd: TokensCommand, config: Config) -> anyhow::Result<ExitCode> {
    let store = app::open_store(&config).await?;
    let done = change_tokens(&store, cmd, config.token_ttl_days).await;
    // Closed on failure too: SQLite checkpoints its log on close.
    store.close().await;
    done.map(|()| ExitCode::SUCCESS)
}

async fn change_tokens(store: &crate::store::DynStore, cmd: TokensCommand, default_days: u32) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::Create { official, days } => {
            let days = days.unwrap_or(default_days);
            if days == 0 {
                bail!("--days: must be at least 1");
            }
            let token = new_token();
            store
                .add_token(&official.trim().to_lowercase(), &token_digest(&token), days)
                .await
                .with_context(|| format!("--official: no active official {official:?}"))?;
            println!("{token}");
        }
        TokensCommand::Revoke { token } => {
            if !store.revoke_token(&token_digest(&token)).await? {
                bail!("token: no live token matches");
            }
            eprintln!("token revoked");
        }
    }
    Ok(())
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty() && domain.contains('.') && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn read_or_generate_password() -> anyhow::Result<(String, bool)> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let mut bytes = [0u8; 18];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        return Ok((URL_SAFE_NO_PAD.encode(bytes), true));
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("cannot read the password from standard input")?;
    Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
}

/// argon2id with the crate's defaults (19 MiB, 2 passes), a PHC string with its own salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// 256 random bits, prefixed so that secret scanners recognise a leaked token.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("hj_{}", URL_SAFE_NO_PAD.encode(bytes))
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
    }

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("hj_") && a.len() >= 40);
        assert_eq!(token_digest(&a).len(), 64);
    }

    #[test]
    fn email_check_refuses_obvious_garbage() {
        assert!(looks_like_email("anna.nowak@um.krakow.pl"));
        for bad in ["anna", "@krakow.pl", "a b@krakow.pl", "anna@localhost"] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
