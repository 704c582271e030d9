//! Shared test support: the fake Bot API, an in-process bot, and helpers to
//! run the real `mnemo` binary as a child process.
#![allow(dead_code)]

pub mod disk;
pub mod fake_llm;
pub mod fake_telegram;
pub mod speech;
pub mod synth;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mnemo::app::App;
use mnemo::config::Config;
use mnemo::core::{Core, Settings};
use mnemo::store::Store;

use fake_telegram::{FakeTelegram, TOKEN};

/// Config for tests: the fake server, a data dir, an allowlist, and rate
/// limits loose enough not to slow tests down.
pub fn config(api_url: &str, data_dir: &Path, allowed: &[i64]) -> Config {
    let mut cfg = Config::defaults();
    cfg.data_dir = data_dir.display().to_string();
    cfg.telegram.api_url = api_url.to_owned();
    cfg.telegram.allowed_user_ids = allowed.to_vec();
    cfg.telegram.poll_timeout_secs = 2;
    cfg.telegram.per_chat_burst = 100;
    cfg.telegram.per_chat_per_sec = 1000.0;
    cfg.telegram.global_per_sec = 1000.0;
    cfg
}

/// The Telegram channel running inside the test process against a fake API,
/// attached to an [`App`] as `mnemo serve` does it (background jobs, embed
/// worker and transcription loop included).
pub struct InProcBot {
    pub tg: FakeTelegram,
    pub core: Arc<Core>,
    pub dir: tempfile::TempDir,
    app: App,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub cfg: Config,
}

impl InProcBot {
    pub async fn start(allowed: &[i64]) -> InProcBot {
        Self::start_with(allowed, |_| {}).await
    }

    pub async fn start_with(allowed: &[i64], tweak: impl FnOnce(&mut Config)) -> InProcBot {
        Self::start_full(allowed, false, tweak).await
    }

    /// With the real embedding model.
    pub async fn start_semantic(allowed: &[i64]) -> InProcBot {
        Self::start_full(allowed, true, |_| {}).await
    }

    /// With the real embedding model, on a data dir filled beforehand.
    pub async fn start_semantic_in(dir: tempfile::TempDir, allowed: &[i64]) -> InProcBot {
        Self::start_in(dir, allowed, true, |_| {}).await
    }

    async fn start_full(
        allowed: &[i64],
        semantic: bool,
        tweak: impl FnOnce(&mut Config),
    ) -> InProcBot {
        Self::start_in(tempfile::tempdir().unwrap(), allowed, semantic, tweak).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        allowed: &[i64],
        semantic: bool,
        tweak: impl FnOnce(&mut Config),
    ) -> InProcBot {
        let tg = FakeTelegram::start().await;
        let mut cfg = config(&tg.url(), dir.path(), allowed);
        tweak(&mut cfg);
        let embedder = semantic.then(|| {
            mnemo::memory::embed::Embedder::shared(&mnemo::models::ModelSet::new(models_dir()), 1)
                .unwrap_or_else(|e| panic!("{e:#} (make test fetches the models)"))
        });
        InProcBot::launch(tg, dir, cfg, embedder).await
    }

    /// Opens an App on `dir`, starts its background and attaches the
    /// Telegram channel against `tg`; returns once it polls.
    async fn launch(
        tg: FakeTelegram,
        dir: tempfile::TempDir,
        cfg: Config,
        embedder: Option<Arc<mnemo::memory::embed::Embedder>>,
    ) -> InProcBot {
        let core = open_core(&cfg, dir.path(), embedder);
        let mut app = App::with_core(&cfg, core).unwrap();
        app.start().await.unwrap();
        let core = app.core().clone();
        let polls = tg.calls("getUpdates").len();
        let task = tokio::spawn(app.serve_telegram(TOKEN.to_owned()));
        // Ready once it polls.
        tg.wait_for("getUpdates", Duration::from_secs(10), |calls| {
            calls
                .iter()
                .filter(|c| c.method.eq_ignore_ascii_case("getUpdates"))
                .count()
                > polls
        })
        .await;
        InProcBot {
            tg,
            core,
            dir,
            app,
            task,
            cfg,
        }
    }

    /// Stops the bot and starts it again on the same data dir and fake API
    /// (a restart: keys, notes and buttons persist).
    pub async fn restart(self) -> InProcBot {
        let InProcBot {
            tg,
            core,
            dir,
            app,
            task,
            cfg,
        } = self;
        let embedder = core.embedder().cloned();
        drop(core);
        halt(app, task).await.unwrap();
        InProcBot::launch(tg, dir, cfg, embedder).await
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let InProcBot { app, task, .. } = self;
        halt(app, task).await
    }

    /// Waits until every pushed update was handled and confirmed and every
    /// reply left the outbox. Chats are handled concurrently (teloxide runs
    /// one worker per chat), so one chat's reply says nothing of another's.
    pub async fn settled(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let store = self.core.store();
            let inbox = store.inbox(1).unwrap().len();
            let outbox = store.outbox_len().unwrap();
            let unconfirmed = self.tg.pending_updates();
            if inbox == 0 && outbox == 0 && unconfirmed == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not settled: {inbox} in the inbox, {outbox} in the outbox, {unconfirmed} unconfirmed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Triggers the App's shutdown, waits for the channel (10 s at most), then
/// closes the App; returns what the channel returned.
async fn halt(app: App, task: tokio::task::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    app.shutdown().trigger();
    let r = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("bot stops within 10 s")
        .unwrap();
    app.close().await;
    r
}

/// The core as `mnemo serve` builds it: store, settings, model, button keys
/// from the data dir.
fn open_core(
    cfg: &Config,
    dir: &Path,
    embedder: Option<Arc<mnemo::memory::embed::Embedder>>,
) -> Core {
    let keys = mnemo::buttons::Keyring::load_or_create(
        dir,
        None,
        7 * 86_400,
        mnemo::core::now_ms() / 1000,
    )
    .unwrap();
    Core::with_embedder(
        Store::open(dir).unwrap(),
        Settings::from_config(cfg),
        embedder,
    )
    .unwrap()
    .with_keyring(keys)
}

/// A core without a channel (no model), as `serve` would build it for
/// `allowed` users, signing buttons with `keys`: for driving events
/// through [`Core::handle`] directly.
pub fn bare_core(dir: &Path, allowed: &[i64], keys: mnemo::buttons::Keyring) -> Core {
    let mut cfg = Config::defaults();
    cfg.telegram.allowed_user_ids = allowed.to_vec();
    Core::new(Store::open(dir).unwrap(), Settings::from_config(&cfg))
        .unwrap()
        .with_keyring(keys)
}

/// Telegram update `update_id` from `user` in their private chat, as the
/// handler builds it (message id = update id).
pub fn telegram_event(user: i64, update_id: u64, body: mnemo::core::Body) -> mnemo::core::Inbound {
    mnemo::core::Inbound {
        origin: mnemo::core::Origin::telegram(update_id),
        chat_id: user,
        user_id: user,
        user_lang: None,
        message_id: Some(update_id as i64),
        reply_to: None,
        at: mnemo::core::now_ms(),
        body,
    }
}

/// The models dir of the user running the tests (filled by `make test`).
pub fn models_dir() -> PathBuf {
    Config::defaults().models_dir().expect("a home directory")
}

/// Path of the built binary; `MNEMO_TEST_BIN` overrides it (a copy taken
/// right after the build, when several worktrees share one target dir and
/// another build may relink `target/debug/mnemo` meanwhile).
pub fn mnemo_bin() -> PathBuf {
    std::env::var_os("MNEMO_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mnemo")))
}

/// A `mnemo` command with a clean environment pointing at `data_dir`.
pub fn mnemo(data_dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(mnemo_bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", data_dir)
        .env("MNEMO_DATA_DIR", data_dir)
        .env("RUST_LOG", "info")
        .env("MNEMO_MODELS__DIR", models_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs `cmd` (a [`mnemo`] command) with mnemo's debug log on stderr and
/// sends it SIGKILL at the first log line with the message `msg` whose
/// `done=` and `total=` fields (0 when absent) satisfy `when` — the
/// import's "import batch committed" and the embedder's "embedded take
/// committed" follow a commit, "ANN graph save started" precedes a save.
/// Returns that line's `done`: what the process had reported durable when
/// it was killed. Panics if the process ends another way (the kill would
/// have landed on nothing) or prints no such line within two minutes.
pub async fn kill_on_log(
    mut cmd: tokio::process::Command,
    msg: &str,
    when: impl Fn(u64, u64) -> bool,
) -> u64 {
    use std::os::unix::process::ExitStatusExt;
    use tokio::io::AsyncBufReadExt;
    let field = |line: &str, name: &str| {
        line.split_once(name)
            .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut child = cmd
        .env("RUST_LOG", "mnemo=debug")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mnemo");
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(120), async {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if err.read_until(b'\n', &mut buf).await.unwrap_or(0) == 0 {
                return None;
            }
            let line = String::from_utf8_lossy(&buf);
            seen.push_str(&line);
            let (done, total) = (field(&line, " done="), field(&line, " total="));
            if line.contains(msg) && when(done, total) {
                return Some(done);
            }
        }
    })
    .await;
    let _ = child.start_kill();
    drop(err);
    let status = child.wait().await.expect("wait for mnemo");
    match found {
        Ok(Some(done)) if status.signal() == Some(9) => done,
        Ok(Some(_)) => panic!("exited before the kill ({status:?}):\n{seen}"),
        Ok(None) => panic!("exited ({status:?}) without logging {msg:?} as asked:\n{seen}"),
        Err(_) => panic!("no {msg:?} as asked within 120 s:\n{seen}"),
    }
}

/// `mnemo serve` against the fake API, with stderr captured to a file.
pub struct ServeProcess {
    pub child: tokio::process::Child,
    pub log: PathBuf,
}

impl ServeProcess {
    pub fn spawn(data_dir: &Path, api_url: &str, allowed: &str, token: &str) -> ServeProcess {
        Self::spawn_env(data_dir, api_url, allowed, token, &[])
    }

    /// [`ServeProcess::spawn`] with `RUST_LOG` set to `filter`.
    pub fn spawn_logging(
        data_dir: &Path,
        api_url: &str,
        allowed: &str,
        token: &str,
        filter: &str,
    ) -> ServeProcess {
        Self::spawn_env(data_dir, api_url, allowed, token, &[("RUST_LOG", filter)])
    }

    /// [`ServeProcess::spawn`] with more environment (set last, so it wins).
    pub fn spawn_env(
        data_dir: &Path,
        api_url: &str,
        allowed: &str,
        token: &str,
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let log =
            data_dir.with_extension(format!("log{}", std::process::id() as u64 + rand_suffix()));
        let f = std::fs::File::create(&log).unwrap();
        let child = mnemo(data_dir)
            .arg("serve")
            .env("TELEGRAM_BOT_TOKEN", token)
            .env("MNEMO_TELEGRAM__API_URL", api_url)
            .env("MNEMO_TELEGRAM__ALLOWED_USER_IDS", allowed)
            .env("MNEMO_TELEGRAM__POLL_TIMEOUT_SECS", "2")
            .env("MNEMO_TELEGRAM__PER_CHAT_PER_SEC", "1000")
            .env("MNEMO_TELEGRAM__PER_CHAT_BURST", "100")
            .env("RUST_LOG", "info,mnemo=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("spawn mnemo serve");
        ServeProcess { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a line in the log matching `pred`, returning it.
    pub async fn wait_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.log_text().lines().find(|l| pred(l)) {
                return l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "log line not seen; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn kill9(&mut self) {
        let pid = self.child.id().expect("running") as i32;
        signal(pid, "KILL");
    }

    pub fn term(&mut self) {
        let pid = self.child.id().expect("running") as i32;
        signal(pid, "TERM");
    }

    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .expect("process exits in time")
            .unwrap()
    }
}

fn rand_suffix() -> u64 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    u64::from(u32::from_le_bytes(b))
}

fn signal(pid: i32, sig: &str) {
    let st = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Runs `mnemo <args>` to completion: (exit code, stdout, stderr).
pub async fn run_mnemo(data_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = mnemo(data_dir).args(args).output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The pairing code in `serve`'s "send `/start CODE`" line.
pub fn pairing_code(line: &str) -> String {
    let code = line
        .split("/start ")
        .nth(1)
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(code.len(), 10, "no pairing code in {line:?}");
    code
}
