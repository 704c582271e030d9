//! The local control socket: how a command reaches the running bot.
//!
//! redb lets one process open the database, so while `mnemo serve` (or
//! `mnemo chat`) runs, `mnemo jobs` cannot read the job records itself. The
//! running App listens on `<data dir>/control.sock` (a Unix socket, mode
//! 0600 inside the 0700 data dir: only the data's owner can connect). A
//! client writes one JSON request line and reads one JSON answer line:
//!
//! ```text
//! → {"cmd":"jobs"}
//! ← {"ok":true,"result":[...]}      or      {"ok":false,"error":"..."}
//! ```
//!
//! [`ask`] returns `None` when nobody listens (no socket file, or a stale
//! one left by a killed process), so the caller opens the store itself.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::Shutdown;

/// The socket's file name in the data dir.
pub const SOCKET: &str = "control.sock";
/// Longest request line read.
const MAX_REQUEST: usize = 4096;

/// What a client may ask.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The job runtime's status (`mnemo jobs`).
    Jobs,
    /// A digest built but not sent (`mnemo digest`).
    Digest {
        chat: Option<i64>,
        /// `hour`, `day` or `week`.
        period: String,
    },
    /// Schedules and the digest ledger (`mnemo schedule list`).
    Schedules,
    /// A verified backup into `to` (an absolute dir; `None`: `backup.dir`),
    /// answered with a `backup::Outcome` (`mnemo backup`).
    Backup { to: Option<String> },
    /// Every health check's reading now, from the running process
    /// (`mnemo doctor`).
    Health,
}

impl Request {
    /// How long a client waits for the answer.
    fn timeout(&self) -> Duration {
        match self {
            Request::Jobs | Request::Schedules | Request::Health => Duration::from_secs(30),
            // With an LLM configured a digest may take its whole deadline.
            Request::Digest { .. } => Duration::from_secs(360),
            // Writing and verifying 100k notes takes seconds; a big store
            // on a slow disk may take minutes.
            Request::Backup { .. } => Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Answers a request (blocking: it may read the store).
pub type Handler = Arc<dyn Fn(Request) -> anyhow::Result<serde_json::Value> + Send + Sync>;

/// The listening socket and its accept loop.
pub struct Server {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Listens on `<dir>/control.sock`, replacing a stale socket file.
    pub fn start(dir: &Path, handler: Handler, shutdown: Shutdown) -> anyhow::Result<Server> {
        let path = dir.join(SOCKET);
        // Only one process holds the database, and it is this one: a socket
        // file still there is a killed process's leftover.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    conn = listener.accept() => match conn {
                        Ok((stream, _)) => {
                            tokio::spawn(serve_one(stream, handler.clone()));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "control socket accept failed");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    },
                    _ = shutdown.triggered() => break,
                }
            }
        });
        Ok(Server { path, task })
    }

    /// Stops listening and removes the socket file.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve_one(stream: UnixStream, handler: Handler) {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(r)
            .take(MAX_REQUEST as u64)
            .read_line(&mut line),
    )
    .await;
    let answer = match read {
        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) => match tokio::task::spawn_blocking(move || handler(req)).await {
                Ok(Ok(v)) => Answer {
                    ok: true,
                    result: Some(v),
                    error: None,
                },
                Ok(Err(e)) => fail(format!("{e:#}")),
                Err(e) => fail(format!("the request failed: {e}")),
            },
            Err(e) => fail(format!("not a request: {e}")),
        },
        Ok(Err(e)) => fail(format!("cannot read the request: {e}")),
        Err(_) => fail("no request within 5 s".into()),
    };
    let mut bytes = serde_json::to_vec(&answer).expect("answers serialise");
    bytes.push(b'\n');
    let _ = w.write_all(&bytes).await;
    let _ = w.shutdown().await;
}

fn fail(error: String) -> Answer {
    Answer {
        ok: false,
        result: None,
        error: Some(error),
    }
}

/// Asks the process serving `dir`. `Ok(None)` when no process listens;
/// an error when one listens and says no.
pub fn ask(dir: &Path, req: &Request) -> anyhow::Result<Option<serde_json::Value>> {
    use std::io::{BufRead, Write};
    let path = dir.join(SOCKET);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(anyhow::anyhow!("cannot reach {}: {e}", path.display())),
    };
    stream.set_read_timeout(Some(req.timeout()))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    std::io::BufReader::new(stream).read_line(&mut answer)?;
    let a: Answer = serde_json::from_str(answer.trim())
        .map_err(|e| anyhow::anyhow!("unreadable answer from the running mnemo: {e}"))?;
    match (a.ok, a.result, a.error) {
        (true, Some(v), _) => Ok(Some(v)),
        (_, _, Some(e)) => anyhow::bail!("the running mnemo answered: {e}"),
        _ => anyhow::bail!("the running mnemo gave an empty answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`ask`] (blocking) from the test's runtime.
    async fn ask_jobs(dir: &Path) -> Option<serde_json::Value> {
        let d = dir.to_path_buf();
        tokio::task::spawn_blocking(move || ask(&d, &Request::Jobs))
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_is_answered_and_nobody_listening_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ask_jobs(dir.path()).await.is_none());
        let shutdown = Shutdown::new();
        let handler: Handler = Arc::new(|r| Ok(serde_json::json!({ "asked": format!("{r:?}") })));
        let server = Server::start(dir.path(), handler, shutdown.clone()).unwrap();
        let mode = std::fs::metadata(dir.path().join(SOCKET))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let v = ask_jobs(dir.path()).await.unwrap();
        assert_eq!(v["asked"], "Jobs");
        // Garbage gets an error answer, not a hang.
        let mut s = UnixStream::connect(dir.path().join(SOCKET)).await.unwrap();
        s.write_all(b"{\"cmd\":\"format_disk\"}\n").await.unwrap();
        let mut out = String::new();
        BufReader::new(s).read_line(&mut out).await.unwrap();
        assert!(
            out.contains("\"ok\":false") && out.contains("not a request"),
            "{out}"
        );
        shutdown.trigger();
        server.stop().await;
        assert!(!dir.path().join(SOCKET).exists());
        // A stale socket file (a killed process) reads as nobody listening.
        let stale = std::os::unix::net::UnixListener::bind(dir.path().join(SOCKET)).unwrap();
        drop(stale);
        assert!(ask_jobs(dir.path()).await.is_none());
    }
}
