//! Where the event log connects: `DATABASE_URL` with one host, or with several (libpq's
//! multi-host form, `postgres://a:5432,b:5432/db?target_session_attrs=read-write` or
//! `host=a,b port=5432,5432 dbname=db target_session_attrs=read-write`), of which the pool
//! uses the first that accepts writes — and finds it again after a failover.
//!
//! sqlx 0.8 takes one host and ignores `target_session_attrs` (launchbadge/sqlx#2290 asks for
//! more and is open), so this module does libpq's part: it parses the list into one set of
//! sqlx options per host, checks every new pooled connection (`after_connect`), and runs a
//! watcher task that holds one connection to the chosen host, checks it every
//! [`HEALTH_INTERVAL`], and when it is gone or read-only walks the hosts in order and points
//! the pool at the first that is writable. Pooled connections opened before such a switch are
//! dropped when next acquired.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};
use tokio::sync::{watch, Notify};

use crate::Error;

/// How often the watcher checks that the chosen host still accepts writes.
pub(crate) const HEALTH_INTERVAL: Duration = Duration::from_millis(500);
/// How soon the watcher walks the hosts again when none accepted writes.
const RETRY_INTERVAL: Duration = Duration::from_millis(200);
/// How long one host may take to accept a connection (or answer the check) during a walk.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `target_session_attrs`: which server a session must land on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionAttrs {
    /// Any server that answers (the default).
    Any,
    /// One whose sessions are read-write by default (`SHOW transaction_read_only` is `off`).
    ReadWrite,
    /// One that is not in recovery (`pg_is_in_recovery()` is false).
    Primary,
}

/// A parsed `DATABASE_URL`: one set of options per host, in the order given.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) hosts: Vec<PgConnectOptions>,
    pub(crate) attrs: SessionAttrs,
}

/// Parses `DATABASE_URL` in URL form (`postgres://…`, `postgresql://…`) or key=value form.
pub(crate) fn parse(url: &str) -> Result<Target, Error> {
    let url = url.trim();
    let parts = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)?
    } else if url.contains('=') {
        split_keywords(url)?
    } else {
        return Err(config(
            "expected a postgres:// URL or key=value pairs".to_owned(),
        ));
    };
    let base: PgConnectOptions =
        (parts.base_url.parse()).map_err(|e| Error::Config(crate::error::DbError::new(e)))?;
    let default_port = PgConnectOptions::new_without_pgpass().get_port();
    let ports = parts
        .ports
        .iter()
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| config(format!("invalid port `{p}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ports.len() > 1 && ports.len() != parts.hosts.len().max(1) {
        return Err(config(format!(
            "{} ports for {} hosts: give one port, or one per host",
            ports.len(),
            parts.hosts.len()
        )));
    }
    let port_for = |i: usize, own: Option<u16>| {
        own.or_else(|| ports.get(i).or(ports.first()).copied())
            .unwrap_or(default_port)
    };
    let hosts = if parts.hosts.is_empty() {
        // No host at all: sqlx's own default (PGHOST, else localhost), with the port given.
        vec![base.clone().port(port_for(0, None))]
    } else {
        parts
            .hosts
            .iter()
            .enumerate()
            .map(|(i, (host, own))| {
                let options = base.clone().port(port_for(i, *own));
                if host.starts_with('/') {
                    options.socket(host)
                } else {
                    options.host(host)
                }
            })
            .collect()
    };
    Ok(Target {
        hosts,
        attrs: parts.attrs,
    })
}

/// What [`parse`] separates out of a connection string before sqlx reads the rest.
struct Parts {
    /// The string without its hosts, ports and `target_session_attrs` (sqlx reads this).
    base_url: String,
    /// Hosts in order, each with the port written beside it.
    hosts: Vec<(String, Option<u16>)>,
    /// `port=` values (one for every host, or one per host).
    ports: Vec<String>,
    attrs: SessionAttrs,
}

fn split_url(url: &str) -> Result<Parts, Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| config("missing `://`".to_owned()))?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let (userinfo, host_list) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let mut hosts = Vec::new();
    for item in host_list.split(',').filter(|h| !h.is_empty()) {
        hosts.push(host_and_port(item)?);
    }
    let mut ports = Vec::new();
    let mut attrs = SessionAttrs::Any;
    let mut kept = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "host" | "hostaddr" => {
                for host in percent_decode(value)?.split(',').filter(|h| !h.is_empty()) {
                    hosts.push((host.to_owned(), None));
                }
            }
            "port" => ports.extend(percent_decode(value)?.split(',').map(str::to_owned)),
            "target_session_attrs" => attrs = session_attrs(&percent_decode(value)?)?,
            _ => kept.push(pair),
        }
    }
    // sqlx reads everything else from a single-host URL; the hosts are set per candidate.
    let mut base_url = format!("{scheme}://");
    if let Some(userinfo) = userinfo {
        base_url.push_str(userinfo);
        base_url.push('@');
    }
    base_url.push_str("localhost");
    base_url.push_str(path);
    if !kept.is_empty() {
        base_url.push('?');
        base_url.push_str(&kept.join("&"));
    }
    Ok(Parts {
        base_url,
        hosts,
        ports,
        attrs,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` from a URL's authority.
fn host_and_port(item: &str) -> Result<(String, Option<u16>), Error> {
    let (host, port) = if let Some(v6) = item.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| config(format!("unclosed `[` in host `{item}`")))?;
        (host.to_owned(), after.strip_prefix(':'))
    } else {
        match item.rsplit_once(':') {
            Some((host, port)) => (percent_decode(host)?, Some(port)),
            None => (percent_decode(item)?, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| config(format!("invalid port in host `{item}`")))
        })
        .transpose()?;
    Ok((host, port))
}

fn split_keywords(conninfo: &str) -> Result<Parts, Error> {
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    let mut attrs = SessionAttrs::Any;
    let mut query = Vec::new();
    for (key, value) in keyword_pairs(conninfo)? {
        match key.as_str() {
            "host" | "hostaddr" => hosts.extend(
                value
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(|h| (h.to_owned(), None)),
            ),
            "port" => ports.extend(value.split(',').map(str::to_owned)),
            "target_session_attrs" => attrs = session_attrs(&value)?,
            // libpq's per-host connect timeout: the pool's acquire timeout bounds the wait here.
            "connect_timeout" => {}
            _ => query.push(format!("{key}={}", percent_encode(&value))),
        }
    }
    let mut base_url = "postgres://localhost".to_owned();
    if !query.is_empty() {
        base_url.push_str("/?");
        base_url.push_str(&query.join("&"));
    }
    Ok(Parts {
        base_url,
        hosts,
        ports,
        attrs,
    })
}

/// libpq's `keyword = value` pairs; a value may be single-quoted with `\'` and `\\` escapes.
fn keyword_pairs(conninfo: &str) -> Result<Vec<(String, String)>, Error> {
    let mut pairs = Vec::new();
    let mut chars = conninfo.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(config(format!("missing `=` after `{key}`")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(config(format!("unterminated value of `{key}`"))),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(config(format!("unterminated quoted value of `{key}`"))),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push((key, value));
    }
}

fn session_attrs(value: &str) -> Result<SessionAttrs, Error> {
    match value {
        "any" => Ok(SessionAttrs::Any),
        "read-write" => Ok(SessionAttrs::ReadWrite),
        "primary" => Ok(SessionAttrs::Primary),
        other => Err(config(format!(
            "target_session_attrs={other} is not supported: the event log writes, so use \
             read-write, primary or any"
        ))),
    }
}

fn percent_decode(text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| config(format!("invalid percent-encoding in `{text}`")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| config(format!("`{text}` is not UTF-8 once decoded")))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn config(message: String) -> Error {
    Error::Config(crate::error::DbError::new(sqlx::Error::Configuration(
        format!("DATABASE_URL: {message}").into(),
    )))
}

/// Stops the failover watcher when the last [`crate::EventLog`] handle is dropped.
#[derive(Debug)]
pub(crate) struct WatcherGuard {
    _stop: watch::Sender<()>,
}

/// Builds the pool for `target`: as sqlx does for one host that any session may use; with a
/// session check on every new connection when `target_session_attrs` asks for one; and with
/// the failover watcher (on the current tokio runtime) when there are several hosts.
pub(crate) fn pool(target: Target, options: PgPoolOptions) -> (PgPool, Option<WatcherGuard>) {
    let Target { hosts, attrs } = target;
    let Some(first) = hosts.first().cloned() else {
        // parse() always yields a host; an empty list cannot reach here.
        return (options.connect_lazy_with(PgConnectOptions::new()), None);
    };
    if attrs == SessionAttrs::Any && hosts.len() == 1 {
        return (options.connect_lazy_with(first), None);
    }
    let wake = Arc::new(Notify::new());
    let switch = Arc::new(Switch::new());
    let check = attrs;
    let woken = wake.clone();
    let switched = switch.clone();
    let options = options
        .after_connect(move |conn, _meta| {
            let wake = woken.clone();
            Box::pin(async move {
                if accepts(conn, check).await? {
                    Ok(())
                } else {
                    wake.notify_one();
                    Err(sqlx::Error::Configuration(
                        "this server does not accept writes (target_session_attrs); \
                         looking for the one that does"
                            .into(),
                    ))
                }
            })
        })
        .before_acquire(move |_conn, meta| {
            let current = switched.opened_after_switch(meta.age);
            Box::pin(async move { Ok(current) })
        });
    let pool = options.connect_lazy_with(first);
    if hosts.len() == 1 {
        return (pool, None);
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            "no tokio runtime: the event log will not follow a failover between its hosts"
        );
        return (pool, None);
    };
    let (stop, stopped) = watch::channel(());
    runtime.spawn(watch_hosts(
        pool.clone(),
        hosts,
        attrs,
        wake,
        switch,
        stopped,
    ));
    (pool, Some(WatcherGuard { _stop: stop }))
}

/// When the pool was last pointed at another host, to retire connections opened before.
struct Switch {
    epoch: Instant,
    /// Nanoseconds after `epoch` of the last switch (0: none yet).
    at: AtomicU64,
}

impl Switch {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            at: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn record(&self) {
        self.at.store(self.now().max(1), Ordering::Release);
    }

    /// True for a connection of this `age` opened after the last switch.
    fn opened_after_switch(&self, age: Duration) -> bool {
        let at = self.at.load(Ordering::Acquire);
        let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
        at == 0 || self.now().saturating_sub(age) >= at
    }
}

/// True when the session on `conn` is what `attrs` asks for.
async fn accepts(conn: &mut PgConnection, attrs: SessionAttrs) -> Result<bool, sqlx::Error> {
    match attrs {
        SessionAttrs::Any => Ok(true),
        SessionAttrs::ReadWrite => {
            let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
                .fetch_one(conn)
                .await?;
            Ok(read_only == "off")
        }
        SessionAttrs::Primary => {
            let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                .fetch_one(conn)
                .await?;
            Ok(!in_recovery)
        }
    }
}

/// `host:port` (or the socket path) of a candidate, for logs.
fn describe(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(socket) => format!("{}:{}", socket.display(), options.get_port()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    }
}

/// The failover watcher: keeps one connection to the chosen host and checks it; when it is
/// lost or read-only, walks the hosts in order and points the pool at the first writable one.
async fn watch_hosts(
    pool: PgPool,
    hosts: Vec<PgConnectOptions>,
    attrs: SessionAttrs,
    wake: Arc<Notify>,
    switch: Arc<Switch>,
    mut stopped: watch::Receiver<()>,
) {
    let mut current = 0;
    let mut held: Option<PgConnection> = None;
    let mut lost_since: Option<Instant> = None;
    loop {
        let healthy = match held.as_mut() {
            Some(conn) => matches!(
                tokio::time::timeout(PROBE_TIMEOUT, accepts(conn, attrs)).await,
                Ok(Ok(true))
            ),
            None => false,
        };
        let wait = if healthy {
            HEALTH_INTERVAL
        } else {
            held = None;
            let lost = *lost_since.get_or_insert_with(Instant::now);
            match find_writable(&hosts, attrs).await {
                Some((index, conn)) => {
                    held = Some(conn);
                    lost_since = None;
                    if index != current {
                        current = index;
                        pool.set_connect_options(hosts[index].clone());
                        switch.record();
                        tracing::warn!(
                            host = %describe(&hosts[index]),
                            searched_ms = lost.elapsed().as_millis(),
                            "event log: switched to the server that accepts writes"
                        );
                    }
                    HEALTH_INTERVAL
                }
                None => RETRY_INTERVAL,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
            changed = stopped.changed() => if changed.is_err() { return },
        }
        if pool.is_closed() {
            return;
        }
    }
}

/// The first host, in the order given, that answers and accepts writes, with its connection.
async fn find_writable(
    hosts: &[PgConnectOptions],
    attrs: SessionAttrs,
) -> Option<(usize, PgConnection)> {
    for (index, options) in hosts.iter().enumerate() {
        let probe = async {
            let mut conn = PgConnection::connect_with(options).await?;
            let ok = accepts(&mut conn, attrs).await?;
            Ok::<_, sqlx::Error>((ok, conn))
        };
        match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            Ok(Ok((true, conn))) => return Some((index, conn)),
            Ok(Ok((false, conn))) => {
                tracing::debug!(host = %describe(options), "event log: server is read-only");
                let _ = conn.close().await;
            }
            Ok(Err(error)) => {
                tracing::debug!(host = %describe(options), %error, "event log: server does not answer");
            }
            Err(_) => tracing::debug!(host = %describe(options), "event log: server timed out"),
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn hosts(url: &str) -> Vec<String> {
        parse(url).map_or_else(
            |e| vec![format!("error: {e}")],
            |t| t.hosts.iter().map(describe).collect(),
        )
    }

    #[test]
    fn a_url_may_list_several_hosts_each_with_its_port() {
        assert_eq!(
            hosts("postgres://u:p@10.0.0.1:5433,db2,[::1]:6000/calltrail?target_session_attrs=read-write"),
            ["10.0.0.1:5433", "db2:5432", "::1:6000"]
        );
        let target = parse("postgres://u@a,b/db?target_session_attrs=read-write").unwrap();
        assert_eq!(target.attrs, SessionAttrs::ReadWrite);
        assert_eq!(target.hosts[1].get_username(), "u");
        assert_eq!(target.hosts[1].get_database(), Some("db"));
    }

    #[test]
    fn a_url_may_give_hosts_and_ports_as_parameters() {
        assert_eq!(
            hosts("postgresql:///calltrail?host=a,b&port=1,2&sslmode=disable"),
            ["a:1", "b:2"]
        );
        assert_eq!(hosts("postgres:///db?host=a,b&port=7"), ["a:7", "b:7"]);
        assert_eq!(
            hosts("postgres:///db?host=%2Fvar%2Frun%2Fpostgresql"),
            ["/var/run/postgresql:5432"]
        );
    }

    #[test]
    fn key_value_form_lists_hosts_and_ports_like_libpq() {
        let target = parse(
            "host=127.0.0.1,127.0.0.1 port=55432,55433 user=postgres dbname=calltrail \
             application_name='a b' target_session_attrs=primary",
        )
        .unwrap();
        assert_eq!(
            target.hosts.iter().map(describe).collect::<Vec<_>>(),
            ["127.0.0.1:55432", "127.0.0.1:55433"]
        );
        assert_eq!(target.attrs, SessionAttrs::Primary);
        assert_eq!(target.hosts[0].get_database(), Some("calltrail"));
        assert_eq!(target.hosts[0].get_application_name(), Some("a b"));
        assert_eq!(
            keyword_pairs(r"password='it\'s' x = 1").unwrap(),
            [
                ("password".to_owned(), "it's".to_owned()),
                ("x".to_owned(), "1".to_owned())
            ]
        );
    }

    #[test]
    fn a_single_host_without_attributes_is_what_sqlx_reads() {
        let target = parse("postgres://postgres@127.0.0.1:54329/calltrail").unwrap();
        assert_eq!(target.attrs, SessionAttrs::Any);
        assert_eq!(
            target.hosts.iter().map(describe).collect::<Vec<_>>(),
            ["127.0.0.1:54329"]
        );
    }

    #[test]
    fn mistakes_are_refused_with_what_was_wrong() {
        for (url, says) in [
            ("postgres://a,b/db?port=1,2,3", "3 ports for 2 hosts"),
            ("postgres://a:x/db", "invalid port in host `a:x`"),
            (
                "host=a port=1 target_session_attrs=standby",
                "not supported",
            ),
            ("host='a", "unterminated"),
            ("mysql-ish", "expected a postgres:// URL"),
        ] {
            let error = parse(url).expect_err(url).to_string();
            assert!(error.contains(says), "{url}: {error}");
        }
    }

    #[test]
    fn connections_opened_before_a_switch_are_retired() {
        let switch = Switch::new();
        assert!(switch.opened_after_switch(Duration::from_secs(3600)));
        switch.record();
        assert!(!switch.opened_after_switch(Duration::from_millis(1)));
        assert!(switch.opened_after_switch(Duration::ZERO));
    }
}
