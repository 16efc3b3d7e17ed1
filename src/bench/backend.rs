//! A fresh database and queue for one backend, made the way the tests make them, and removed
//! afterwards: SQLite files in a folder of their own, or a new PostgreSQL database and a random
//! Redis key prefix.

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use sqlx::Connection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// SQLite store and SQLite queue.
    Embedded,
    /// PostgreSQL store and Redis queue.
    Postgres,
    Both,
}

impl BackendChoice {
    pub(super) fn backends(self) -> Vec<Backend> {
        match self {
            BackendChoice::Embedded => vec![Backend::Embedded],
            BackendChoice::Postgres => vec![Backend::Postgres],
            BackendChoice::Both => vec![Backend::Embedded, Backend::Postgres],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    Embedded,
    Postgres,
}

impl Backend {
    pub(super) fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "SQLite + SQLite queue",
            Backend::Postgres => "PostgreSQL + Redis",
        }
    }
}

/// Where one backend's run keeps its data.
pub(super) struct Fresh {
    pub database_url: String,
    pub queue_url: String,
    pub prefix: String,
    folder: Option<PathBuf>,
    /// (admin URL, database name) of a database we created.
    postgres: Option<(String, String)>,
}

impl Fresh {
    pub(super) async fn create(backend: Backend, postgres_admin: &str, redis: &str) -> anyhow::Result<Fresh> {
        let id = Uuid::new_v4().simple().to_string();
        let prefix = format!("hejnal-bench-{id}");
        match backend {
            Backend::Embedded => {
                let folder = std::env::temp_dir().join(format!("hejnal-bench-{id}"));
                std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
                let database_url = format!("sqlite://{}/hejnal.db", folder.display());
                let queue_url = format!("sqlite://{}/queue.db", folder.display());
                Ok(Fresh { database_url, queue_url, prefix, folder: Some(folder), postgres: None })
            }
            Backend::Postgres => {
                let name = format!("hejnal_bench_{id}");
                let mut admin = sqlx::PgConnection::connect(postgres_admin).await.context("cannot reach PostgreSQL (--postgres-url)")?;
                // The name is ours (hex), not input.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut admin).await?;
                let mut url = url::Url::parse(postgres_admin)?;
                url.set_path(&format!("/{name}"));
                let fresh = Fresh {
                    database_url: url.to_string(),
                    queue_url: redis.to_owned(),
                    prefix,
                    folder: None,
                    postgres: Some((postgres_admin.to_owned(), name)),
                };
                Ok(fresh)
            }
        }
    }

    /// `base`, pointed at this data, listening on a free port, migrating on start.
    pub(super) fn config(&self, base: &crate::config::Config) -> anyhow::Result<crate::config::Config> {
        let mut config = base.clone();
        config.listen = "127.0.0.1:0".parse()?;
        config.public_url = url::Url::parse("http://127.0.0.1:0/")?;
        config.database_url = self.database_url.clone();
        config.queue.url = self.queue_url.clone();
        config.queue.prefix = self.prefix.clone();
        config.migrate_on_start = true;
        Ok(config)
    }

    /// Delete the files, or drop the database and the queue's keys. Call after the app stopped.
    pub(super) async fn remove(self) -> anyhow::Result<()> {
        if let Some(folder) = &self.folder {
            std::fs::remove_dir_all(folder)?;
        }
        if let Some((admin, name)) = &self.postgres {
            let mut admin = sqlx::PgConnection::connect(admin).await?;
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await?;
            delete_keys(&self.queue_url, &self.prefix).await?;
        }
        Ok(())
    }
}

async fn delete_keys(url: &str, prefix: &str) -> anyhow::Result<()> {
    let mut conn = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await?;
    for chunk in keys.chunks(500) {
        let _: () = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await?;
    }
    Ok(())
}
