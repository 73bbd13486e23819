//! A TCP forwarder to the real PostgreSQL server that a test can cut and restore, to play a
//! database outage without touching the server other tests share.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:port` to the test server.
#[derive(Debug)]
pub struct DbProxy {
    port: u16,
    upstream: String,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl DbProxy {
    /// Starts forwarding to the host:port of `database_url`.
    pub async fn start(database_url: &str) -> Arc<DbProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let port = listener.local_addr().expect("local address").port();
        let proxy = Arc::new(DbProxy {
            port,
            upstream: host_port(database_url),
            task: Mutex::new(None),
        });
        proxy.serve(listener).await;
        proxy
    }

    /// `database_url` rewritten to go through this proxy.
    pub fn url(&self, database_url: &str) -> String {
        let (scheme, rest) = database_url
            .split_once("://")
            .unwrap_or(("postgres", database_url));
        let (userinfo, after) = match rest.rsplit_once('@') {
            Some((userinfo, after)) => (format!("{userinfo}@"), after),
            None => (String::new(), rest),
        };
        let path = after.find(['/', '?']).map_or("", |i| &after[i..]);
        format!("{scheme}://{userinfo}127.0.0.1:{}{path}", self.port)
    }

    async fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        *self.task.lock().await = Some(task);
    }

    /// Closes the listener and every forwarded connection: the database is "down".
    pub async fn cut(&self) {
        if let Some(task) = self.task.lock().await.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port: the database is "back".
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy port");
        self.serve(listener).await;
    }
}

/// host:port of a PostgreSQL URL (default port 5432).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    let host_port = rest.split(['/', '?']).next().unwrap_or("127.0.0.1:5432");
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_server_address() {
        assert_eq!(
            super::host_port("postgres://u:p@db:6432/x?sslmode=disable"),
            "db:6432"
        );
        assert_eq!(super::host_port("postgres://localhost/x"), "localhost:5432");
    }
}
