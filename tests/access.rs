//! Who mnemo serves, what that costs, and what it keeps secret: group chats
//! (`telegram.groups`), strangers (no refusal in groups, at most one a day
//! in private, no commit for the rest), voice downloads too slow for their
//! timeout, the pairing code (terminal only, expiring), and the modes of
//! every file in the data dir — through the fake Bot API, in process and
//! with the real binary.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use mnemo::config::GroupPolicy;
use mnemo::store::VoiceState;
use support::fake_telegram::{self as tg, FakeTelegram, TOKEN};
use support::{run_mnemo, InProcBot, ServeProcess};

const OWNER: i64 = 1001;
const STRANGER: i64 = 2002;
const T: Duration = Duration::from_secs(20);

/// leaveChat calls for `chat`.
fn leaves(tg: &FakeTelegram, chat: i64) -> usize {
    tg.calls("leaveChat")
        .iter()
        .filter(|c| c.params["chat_id"].as_i64() == Some(chat))
        .count()
}

/// A fake Bot API and a data dir (inside a temp dir) for the binary.
async fn fake_and_dir() -> (FakeTelegram, tempfile::TempDir, std::path::PathBuf) {
    let tg = FakeTelegram::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    (tg, tmp, dir)
}

async fn polling(tg: &FakeTelegram) {
    tg.wait_for("the first getUpdates", T, |calls| {
        calls
            .iter()
            .any(|c| c.method.eq_ignore_ascii_case("getUpdates"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_groups_off_the_binary_leaves_every_group_without_a_word() {
    let (tg, _tmp, dir) = fake_and_dir().await;
    let mut p = ServeProcess::spawn(&dir, &tg.url(), &OWNER.to_string(), TOKEN);
    polling(&tg).await;
    // Even the owner's group: groups are off by default.
    tg.push(tg::bot_added(-500, OWNER));
    // A group whose member update was missed: its first message says it.
    tg.push(tg::group_text(-501, OWNER, 1, "/stats"));
    // Kinds mnemo does not serve at all.
    tg.push(tg::channel_post(-502, 1, "a channel post"));
    tg.push(tg::inline_query(STRANGER, "secrets"));
    tg.push(tg::business_message(OWNER, 2, "through a business account"));
    tg.push(tg::text(OWNER, 3, "a private note"));
    tg.wait_sent(OWNER, 1, T).await;
    tg.wait_for("two leaveChat", T, |calls| {
        calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case("leaveChat"))
            .count()
            >= 2
    })
    .await;
    p.term();
    assert!(p.wait_exit(T).await.success());
    assert_eq!((leaves(&tg, -500), leaves(&tg, -501)), (1, 1));
    assert_eq!(tg.calls("leaveChat").len(), 2);
    // One message in all: the private note's acknowledgement.
    let sent = tg.calls("sendMessage");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].params["chat_id"].as_i64(), Some(OWNER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_group_serves_allowed_users_only_and_shows_only_its_own_data() {
    let bot = InProcBot::start_with(&[OWNER], |c| {
        c.telegram.groups = GroupPolicy::Allowlisted;
    })
    .await;
    let (group, foreign) = (-600, -601);
    bot.tg.push(tg::bot_added(group, OWNER));
    bot.tg.push(tg::bot_added(foreign, STRANGER));
    bot.tg.push(tg::text(OWNER, 1, "the bank PIN hint is blue"));
    bot.tg
        .push(tg::text(OWNER, 2, "call the notary about the will"));
    bot.tg.wait_sent(OWNER, 2, T).await;
    bot.tg.push(tg::group_text(
        group,
        OWNER,
        10,
        "picnic on saturday at the lake",
    ));
    bot.tg.wait_sent(group, 1, T).await;
    // Strangers in the group: no refusal, no recall, no pairing, nothing.
    bot.tg
        .push(tg::group_text(group, STRANGER, 11, "/recall bank"));
    bot.tg
        .push(tg::group_text(group, STRANGER, 12, "hello bot"));
    bot.tg
        .push(tg::group_text(group, STRANGER, 13, "/start ABCDEFGHJK"));
    bot.settled().await;
    assert_eq!(bot.tg.sent_to(group).len(), 1);
    assert_eq!(bot.core.store().refused_on(STRANGER).unwrap(), None);

    bot.tg.push(tg::group_text(group, OWNER, 14, "/stats"));
    bot.tg.push(tg::group_text(group, OWNER, 15, "/recent"));
    bot.tg
        .push(tg::group_text(group, OWNER, 16, "/recall notary"));
    let sent = bot.tg.wait_sent(group, 4, T).await;
    let (stats, recent, recall) = (&sent[1], &sent[2], &sent[3]);
    assert!(stats.contains("Notes: 1"), "{stats}");
    for private in ["in total", "Database", "Vector index"] {
        assert!(!stats.contains(private), "{stats}");
    }
    assert!(
        recent.contains("picnic") && !recent.contains("notary"),
        "{recent}"
    );
    assert!(
        !recall.contains("the will") && !recall.contains("PIN"),
        "{recall}"
    );

    // In the owner's private chat /stats still covers everything.
    bot.tg.push(tg::text(OWNER, 3, "/stats"));
    let private = bot.tg.wait_sent(OWNER, 3, T).await;
    assert!(
        private[2].contains("in total: 3") && private[2].contains("Database"),
        "{}",
        private[2]
    );
    assert_eq!((leaves(&bot.tg, group), leaves(&bot.tg, foreign)), (0, 1));
    assert!(bot.tg.sent_to(foreign).is_empty());
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_gets_one_refusal_and_the_rest_costs_no_commit() {
    let bot = InProcBot::start(&[OWNER]).await;
    let ids: Vec<i64> = (0..20)
        .map(|i| {
            let text = if i % 5 == 0 {
                "/recall the plans"
            } else {
                "hi"
            };
            bot.tg.push(tg::text(STRANGER, i, text))
        })
        .collect();
    bot.tg.wait_sent(STRANGER, 1, T).await;
    let qid = bot.tg.press(STRANGER, 7, "forged-data");
    assert!(bot.tg.wait_answer(&qid, T).await.contains("private"));
    bot.tg.push(tg::text(OWNER, 1, "still served"));
    bot.tg.wait_sent(OWNER, 1, T).await;
    bot.settled().await;
    let refusals = bot.tg.sent_to(STRANGER);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].contains(&STRANGER.to_string()));
    // Only the refused message was committed (its marker, the refusal
    // day and the reply, in one commit); the other 19 never touched the
    // store.
    let store = bot.core.store();
    let committed = ids
        .iter()
        .filter(|id| store.is_processed(**id as u64).unwrap())
        .count();
    assert_eq!(committed, 1);
    assert_eq!(store.count_notes().unwrap(), 1);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_slower_than_its_timeout_gives_up_after_bounded_tries_and_says_so() {
    let bot = InProcBot::start_with(&[OWNER], |c| {
        c.voice.download_base_secs = 0.2;
        c.voice.download_min_bytes_per_sec = 1_000_000;
        c.voice.download_attempts = 2;
    })
    .await;
    // 40 kB at 4 kB/s takes 10 s; the timeout for 40 kB is 0.24 s.
    bot.tg.add_slow_file("slow1", vec![7u8; 40_000], 4_000);
    bot.tg.push(tg::voice(OWNER, 1, "slow1", 5, 40_000));
    let deadline = std::time::Instant::now() + T;
    let told = loop {
        if let Some(m) = bot
            .tg
            .sent_to(OWNER)
            .into_iter()
            .find(|m| m.contains("kept failing"))
        {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the user was not told"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        told.contains("2 tries") && told.contains("retry-voice"),
        "{told}"
    );
    assert_eq!(bot.tg.calls("download").len(), 2);
    let failed = bot.core.voice_jobs(VoiceState::Failed).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 2);
    // retry-voice puts it back with a fresh count of tries.
    assert_eq!(bot.core.voice_retry().unwrap(), 1);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pairing_code_is_on_the_terminal_not_in_the_json_log_and_expires() {
    let (tg, _tmp, dir) = fake_and_dir().await;
    let mut p = ServeProcess::spawn_env(
        &dir,
        &tg.url(),
        "",
        TOKEN,
        &[
            ("MNEMO_LOG__FORMAT", "json"),
            ("MNEMO_TELEGRAM__PAIRING_TTL_SECS", "2"),
        ],
    );
    let line = p.wait_log(T, |l| l.contains("/start ")).await;
    assert!(!line.trim_start().starts_with('{'), "{line}");
    let code = support::pairing_code(&line);
    polling(&tg).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    tg.push(tg::text(OWNER, 1, &format!("/start {code}")));
    let sent = tg.wait_sent(OWNER, 1, T).await;
    assert!(
        sent[0].contains(&OWNER.to_string()) && !sent[0].contains("Paired"),
        "an expired code paired: {sent:?}"
    );
    p.term();
    assert!(p.wait_exit(T).await.success());
    let log = p.log_text();
    let json: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
    assert!(json.len() > 3, "{log}");
    for l in json {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
        assert!(!l.contains(&code), "the code is in the log: {l}");
    }
}

/// Every file under `dir` is 0600 or stricter, every directory 0700 or
/// stricter; returns how many files were checked.
fn assert_private(dir: &Path) -> usize {
    let mut files = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let mode = e.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", e.path().display());
        if e.file_type().unwrap().is_dir() {
            files += assert_private(&e.path());
        } else {
            files += 1;
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_the_binary_writes_is_private() {
    let (tg, _tmp, dir) = fake_and_dir().await;
    // A graph from the first vector on, so ann/ is written at the stop.
    let mut p = ServeProcess::spawn_env(
        &dir,
        &tg.url(),
        &OWNER.to_string(),
        TOKEN,
        &[("MNEMO_RECALL__ANN_THRESHOLD", "1")],
    );
    polling(&tg).await;
    for i in 1..=3 {
        tg.push(tg::text(
            OWNER,
            i,
            &format!("note number {i} about the garden"),
        ));
    }
    tg.wait_sent(OWNER, 3, T).await;
    // A backup through the running process, into <data>/backups.
    let (code, out, err) = run_mnemo(&dir, &["backup"]).await;
    assert_eq!(code, 0, "{out}{err}");
    p.term();
    assert!(p.wait_exit(T).await.success());
    let models = support::models_dir();
    if models.join("model.onnx").exists() || std::fs::read_dir(&models).is_ok() {
        assert!(dir.join("ann").is_dir(), "no graph was saved");
    }
    assert!(dir.join("backups").is_dir());
    let n = assert_private(&dir);
    assert!(n >= 4, "{n} files");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}
