//! A fresh PostgreSQL schema per test in `DATABASE_URL`'s database: shared by the
//! PostgreSQL tests of this crate and, through `#[path]` modules, by the workspace soak
//! (`tests/soak`) and the CLI's tests, so that every one of them skips, fails and cleans up
//! the same way.

#![allow(dead_code, unreachable_pub)]

use std::str::FromStr;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The variable that turns a missing `DATABASE_URL` from a skip into a failure (as in CI).
pub const REQUIRE_VAR: &str = "EVENTODB_KIT_REQUIRE_POSTGRES";

/// An empty schema of its own; dropped by [`Schema::drop_all`].
pub struct Schema {
    admin_url: String,
    name: String,
}

impl Schema {
    /// Creates `<prefix>_<uuid>`. `None`, with a printed reason, when `DATABASE_URL` is
    /// unset; a panic then when `EVENTODB_KIT_REQUIRE_POSTGRES` is set.
    pub async fn create(prefix: &str) -> Option<Schema> {
        let Ok(admin_url) = std::env::var("DATABASE_URL") else {
            assert!(
                std::env::var_os(REQUIRE_VAR).is_none(),
                "{REQUIRE_VAR} is set but DATABASE_URL is not"
            );
            eprintln!(
                "skipped: DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
            return None;
        };
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPool::connect(&admin_url)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&admin)
            .await
            .expect("create schema");
        admin.close().await;
        Some(Schema { admin_url, name })
    }

    /// `DATABASE_URL` with the schema as its `search_path` (`options=-c search_path=…`), as
    /// an operator would hand it to the binary.
    pub fn url(&self) -> String {
        let separator = if self.admin_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.admin_url, self.name
        )
    }

    /// A pool of up to `max_connections` on the schema.
    pub async fn pool(&self, max_connections: u32) -> PgPool {
        let options = PgConnectOptions::from_str(&self.url()).expect("DATABASE_URL");
        connect(options, max_connections).await
    }

    /// Drops the schema (best effort: a test that failed may have left the database
    /// unreachable).
    pub async fn drop_all(self) {
        if let Ok(admin) = PgPool::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}

/// A fresh schema with the kit's migrations applied, and a pool on it.
pub struct PgSchema {
    /// Connections whose `search_path` is the schema.
    pub pool: PgPool,
    schema: Schema,
}

/// A fresh migrated schema named `<prefix>_<uuid>` and a pool of up to `max_connections`
/// on it; `None` as for [`Schema::create`].
pub async fn fresh(prefix: &str, max_connections: u32) -> Option<PgSchema> {
    let schema = Schema::create(prefix).await?;
    let pool = schema.pool(max_connections).await;
    let applied = eventodb_kit::migrate(&pool).await.expect("migrate");
    assert_eq!(
        applied.len(),
        eventodb_kit::migrations::<sqlx::Postgres>().len(),
        "a fresh schema gets every migration"
    );
    Some(PgSchema { pool, schema })
}

impl PgSchema {
    /// Closes the pool and drops the schema.
    pub async fn cleanup(self) {
        self.pool.close().await;
        self.schema.drop_all().await;
    }
}

/// A pool of up to `max_connections` like `pool`'s, whose sessions carry the
/// `application_name` `name`: [`end_sessions`] ends them and no others.
pub async fn named_pool(pool: &PgPool, name: &str, max_connections: u32) -> PgPool {
    let options = pool
        .connect_options()
        .as_ref()
        .clone()
        .application_name(name);
    connect(options, max_connections).await
}

/// A pool of up to `max_connections` with `options`.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await
        .expect("pool")
}

/// Ends every session named `name` (as a PostgreSQL restart or failover does: open
/// transactions roll back, statements in flight fail, a commit in flight may or may not have
/// happened), from `admin`, whose own sessions are kept. How many it ended.
pub async fn end_sessions(admin: &PgPool, name: &str) -> u64 {
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND pid <> pg_backend_pid()) AS t",
    )
    .bind(name)
    .fetch_one(admin)
    .await
    .expect("end sessions");
    u64::try_from(ended).unwrap_or(0)
}

/// Ends the sessions named `name` again and again, at uneven gaps (5 to 35 ms, so that the
/// ends land at every step of the work), until stopped.
pub struct SessionEnder {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ended: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SessionEnder {
    /// Starts ending the sessions named `name`, from `admin`.
    pub fn start(admin: PgPool, name: String) -> SessionEnder {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let task = {
            let (stop, ended) = (stop.clone(), ended.clone());
            tokio::spawn(async move {
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let gap = 5 + (round * 7) % 31;
                    tokio::time::sleep(std::time::Duration::from_millis(gap)).await;
                    ended.fetch_add(end_sessions(&admin, &name).await, Ordering::Relaxed);
                    round += 1;
                }
            })
        };
        SessionEnder { stop, ended, task }
    }

    /// Ends the sessions named `name`, from `admin`, while `busy` says the work goes on,
    /// until 100 were ended (or 30 s passed); then stops and returns how many it ended. Fails
    /// when fewer than 20 were: the work was not disrupted enough to show anything.
    pub async fn end_while<F, Fut>(admin: PgPool, name: String, mut busy: F) -> u64
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let ender = SessionEnder::start(admin, name.clone());
        let cut_off = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while ender.ended() < 100 && tokio::time::Instant::now() < cut_off && busy().await {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let ended = ender.stop().await;
        assert!(
            ended >= 20,
            "only {ended} sessions named {name} were ended while the work went on"
        );
        println!("sessions ended while the work went on: {ended}");
        ended
    }

    /// Sessions ended so far.
    pub fn ended(&self) -> u64 {
        self.ended.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops; the sessions ended in all.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let ended = self.ended;
        self.task.await.expect("session ender");
        ended.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A TCP proxy in front of PostgreSQL whose "database" can go down: [`DbProxy::outage`]
/// closes every connection through it and refuses new ones for a while, as a PostgreSQL
/// that crashed and restarts does to its clients.
pub struct DbProxy {
    port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Bumped to close every open connection.
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl DbProxy {
    /// A proxy to the server `pool` connects to.
    pub async fn start(pool: &PgPool) -> DbProxy {
        use std::sync::atomic::Ordering;
        let options = pool.connect_options();
        // A socket directory as the host: the same server's TCP port on this machine.
        let host = match options.get_host() {
            host if host.starts_with('/') => "127.0.0.1",
            host => host,
        };
        let target = format!("{host}:{}", options.get_port());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy listener");
        let port = listener.local_addr().expect("proxy address").port();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let task = {
            let (down, cut) = (down.clone(), cut.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if down.load(Ordering::SeqCst) {
                        // Refused: closed before a byte of the handshake.
                        drop(client);
                        continue;
                    }
                    let target = target.clone();
                    let mut cut = cut.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        DbProxy {
            port,
            down,
            cut,
            task,
        }
    }

    /// `pool`'s connect options, through the proxy.
    pub fn options(&self, pool: &PgPool) -> PgConnectOptions {
        let options = pool.connect_options().as_ref().clone();
        options.host("127.0.0.1").port(self.port)
    }

    /// A pool of up to `max_connections` like `pool`'s, through the proxy.
    pub async fn pool(&self, pool: &PgPool, max_connections: u32) -> PgPool {
        connect(self.options(pool), max_connections).await
    }

    /// A pool like `pool`'s through the proxy that connects only when used: an application
    /// that starts before its database answers.
    pub fn lazy_pool(&self, pool: &PgPool, max_connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_lazy_with(self.options(pool))
    }

    /// The database goes down: every connection through the proxy is closed, and new ones
    /// are refused until [`DbProxy::come_up`].
    pub fn go_down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    /// The database is back: connections are accepted again.
    pub fn come_up(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Down for `duration`, then up again.
    pub async fn outage(&self, duration: std::time::Duration) {
        self.go_down();
        tokio::time::sleep(duration).await;
        self.come_up();
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
