//! Scheduled digests: days of schedule run in seconds with a clock of the
//! test's own (DST changes in Europe/Berlin, downtime, active hours, empty
//! periods), and the real binary against the fake Bot API (delivered once
//! with its message id, `kill -9` mid-send never posts a slot twice, the
//! commands and the CLI).

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use mnemo::config::Config;
use mnemo::core::{Body, Core, Inbound, Outcome, Settings};
use mnemo::digest::runner::pass;
use mnemo::store::{SlotRecord, SlotState, Store};
use serde_json::Value;
use support::fake_telegram::{self as tg, FakeTelegram, Script, TOKEN};
use support::{run_mnemo, telegram_event, InProcBot, ServeProcess};

const USER: i64 = 4242;
const T: Duration = Duration::from_secs(30);

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// A core for `USER` with digests in Europe/Berlin, `tweak`ed.
fn core(dir: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> Core {
    let mut cfg = Config::defaults();
    cfg.telegram.allowed_user_ids = vec![USER];
    cfg.digest.timezone = "Europe/Berlin".into();
    tweak(&mut cfg);
    let keys = mnemo::buttons::Keyring::new([7u8; 32]);
    Core::new(Store::open(dir).unwrap(), Settings::from_config(&cfg))
        .unwrap()
        .with_keyring(keys)
}

/// A note from `USER` written at `at`.
fn note(core: &Core, update: u64, text: &str, at: DateTime<Utc>) {
    let mut ev: Inbound = telegram_event(USER, update, Body::Text(text.into()));
    ev.at = at.timestamp_millis();
    core.handle(ev).unwrap();
}

/// Runs passes every 30 s of simulated time over `[from, to)`, calling
/// `each` before every pass (to add notes).
fn simulate(
    core: &Core,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mut each: impl FnMut(DateTime<Utc>),
) {
    let mut t = from;
    while t < to {
        if t.timestamp() % 60 == 0 {
            each(t);
        }
        pass(core, t).unwrap();
        t += chrono::Duration::seconds(30);
    }
}

/// The ledger rows of `USER`'s `schedule`, oldest first.
fn ledger(core: &Core, schedule: &str) -> Vec<(DateTime<Utc>, SlotRecord)> {
    core.store()
        .ledger(Some((USER, schedule)), usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, r)| (DateTime::from_timestamp(k.slot, 0).unwrap(), r))
        .collect()
}

/// Queued digest replies (the outbox), as (slot, rendered keys and args).
fn queued_digests(core: &Core) -> Vec<(i64, String)> {
    core.outbox(usize::MAX)
        .unwrap()
        .into_iter()
        .filter_map(|(_, r)| r.digest.clone().map(|k| (k.slot, format!("{:?}", r.lines))))
        .collect()
}

#[test]
fn four_days_across_the_spring_change_one_digest_a_day_with_only_new_notes() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path(), |c| c.digest.weekly = "0 18 * * SUN".into());
    let mut update = 0;
    // A note at 10:00 local on every day but the 28th (nothing new then).
    let days = [27, 29, 30];
    simulate(
        &core,
        utc(2026, 3, 26, 12, 0),
        utc(2026, 3, 31, 0, 0),
        |t| {
            if t.minute_of_day() == 9 * 60 && days.contains(&t.day_of_month()) {
                update += 1;
                note(&core, update, &format!("todo: task number {update}"), t);
            }
        },
    );
    let daily = ledger(&core, "daily");
    let slots: Vec<_> = daily.iter().map(|(t, r)| (*t, r.state)).collect();
    // 20:00 local: 19:00Z in CET, 18:00Z from the 29th (CEST). The chat
    // has no notes before the 27th: no digests at all.
    assert_eq!(
        slots,
        vec![
            (utc(2026, 3, 27, 19, 0), SlotState::Planned),
            (utc(2026, 3, 28, 19, 0), SlotState::Skipped),
            (utc(2026, 3, 29, 18, 0), SlotState::Planned),
            (utc(2026, 3, 30, 18, 0), SlotState::Planned),
        ]
    );
    assert!(daily.iter().all(|(_, r)| !r.late));
    // Each digest covers exactly its day's note.
    let planned: Vec<_> = daily
        .iter()
        .filter(|(_, r)| r.state == SlotState::Planned)
        .collect();
    assert!(planned.iter().all(|(_, r)| r.notes == 1), "{planned:?}");
    let weekly = ledger(&core, "weekly");
    assert_eq!(weekly.len(), 1);
    assert_eq!(weekly[0].0, utc(2026, 3, 29, 16, 0)); // Sunday 18:00 CEST
    assert_eq!(
        weekly[0].1.notes, 2,
        "the week so far: the 27th and the 29th"
    );
    let queued = queued_digests(&core);
    assert_eq!(queued.len(), 4);
    assert!(queued.iter().any(|(_, l)| l.contains("task number 3")));
    // Passes at any moment do not plan anything twice.
    for _ in 0..3 {
        pass(&core, utc(2026, 3, 30, 18, 0)).unwrap();
    }
    assert_eq!(queued_digests(&core).len(), 4);
}

/// The slots a daily 02:30 (local) schedule records over `[from, to)`,
/// with a note at noon UTC every day.
fn daily_0230_slots(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path(), |c| {
        c.digest.daily = "30 2 * * *".into();
        c.digest.weekly = String::new();
    });
    let mut update = 0;
    simulate(&core, from, to, |t| {
        if t.minute_of_day() == 12 * 60 {
            update += 1;
            note(&core, update, &format!("note {update}"), t);
        }
    });
    ledger(&core, "daily").iter().map(|(t, _)| *t).collect()
}

#[test]
fn autumn_change_a_fixed_time_in_the_repeated_hour_runs_once() {
    assert_eq!(
        daily_0230_slots(utc(2026, 10, 23, 12, 0), utc(2026, 10, 26, 12, 0)),
        vec![
            utc(2026, 10, 24, 0, 30), // 02:30 CEST
            utc(2026, 10, 25, 0, 30), // the first 02:30 of the repeated hour only
            utc(2026, 10, 26, 1, 30), // 02:30 CET
        ]
    );
}

#[test]
fn spring_change_a_fixed_time_in_the_skipped_hour_runs_right_after_it() {
    assert_eq!(
        daily_0230_slots(utc(2026, 3, 27, 12, 0), utc(2026, 3, 30, 12, 0)),
        vec![
            utc(2026, 3, 28, 1, 30), // 02:30 CET
            utc(2026, 3, 29, 1, 0),  // 03:00 CEST: 02:30 does not exist that day
            utc(2026, 3, 30, 0, 30), // 02:30 CEST
        ]
    );
}

#[test]
fn downtime_across_two_slots_sends_one_late_digest_and_records_the_other_as_missed() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path(), |c| c.digest.weekly = String::new());
    note(&core, 1, "before the outage", utc(2026, 6, 1, 8, 0));
    simulate(&core, utc(2026, 6, 1, 7, 0), utc(2026, 6, 1, 19, 0), |_| {});
    assert_eq!(ledger(&core, "daily").len(), 1, "the 1st was sent on time");
    // Down from the 1st 19:00Z to the 3rd 21:00Z (23:00 CEST); a note
    // arrived in between (replayed from Telegram at the restart).
    note(&core, 2, "during the outage", utc(2026, 6, 2, 9, 0));
    let back = utc(2026, 6, 3, 21, 0);
    let p = pass(&core, back).unwrap();
    assert_eq!((p.queued, p.late, p.missed), (1, 1, 1));
    let rows = ledger(&core, "daily");
    let states: Vec<_> = rows.iter().map(|(t, r)| (*t, r.state, r.late)).collect();
    assert_eq!(
        states,
        vec![
            (utc(2026, 6, 1, 18, 0), SlotState::Planned, false),
            (utc(2026, 6, 2, 18, 0), SlotState::Missed, false),
            (utc(2026, 6, 3, 18, 0), SlotState::Planned, true),
        ]
    );
    assert_eq!(
        rows[2].1.notes, 1,
        "the late digest says what is new since the last one"
    );
    // No burst: more passes add nothing.
    simulate(&core, back, back + chrono::Duration::hours(1), |_| {});
    assert_eq!(ledger(&core, "daily").len(), 3);
    // Beyond the 12 h window nothing is sent late: all missed.
    let dir2 = tempfile::tempdir().unwrap();
    let core2 = self::core(dir2.path(), |c| c.digest.weekly = String::new());
    note(&core2, 1, "a note", utc(2026, 6, 1, 8, 0));
    pass(&core2, utc(2026, 6, 1, 8, 1)).unwrap();
    note(&core2, 2, "another", utc(2026, 6, 1, 9, 0));
    let p = pass(&core2, utc(2026, 6, 2, 8, 0)).unwrap(); // 14 h after the slot
    assert_eq!((p.queued, p.missed), (0, 1));
}

#[test]
fn hourly_summaries_only_inside_active_hours() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path(), |c| {
        c.digest.hourly = "0 * * * *".into();
        c.digest.daily = String::new();
        c.digest.weekly = String::new();
        c.digest.active_hours = "08:00-22:00".into();
    });
    let mut update = 0;
    simulate(&core, utc(2026, 6, 10, 0, 0), utc(2026, 6, 11, 0, 0), |t| {
        if t.minute_of_day() % 60 == 30 {
            update += 1;
            note(&core, update, &format!("hour note {update}"), t);
        }
    });
    let rows = ledger(&core, "hourly");
    let local: Vec<u32> = rows
        .iter()
        .map(|(t, _)| t.with_timezone(&chrono_tz::Europe::Berlin).hour_of_day())
        .collect();
    assert_eq!(local, (8..22).collect::<Vec<_>>());
    assert!(rows
        .iter()
        .all(|(_, r)| r.state == SlotState::Planned && r.notes >= 1));
}

#[test]
fn chats_off_strangers_and_imports_get_no_digest() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path(), |c| c.digest.weekly = String::new());
    note(&core, 1, "hello", utc(2026, 6, 1, 8, 0));
    // /schedule off, through the core like any command.
    let mut ev = telegram_event(USER, 2, Body::Text("/schedule off".into()));
    ev.at = utc(2026, 6, 1, 8, 1).timestamp_millis();
    let out = core.handle(ev).unwrap();
    assert!(
        matches!(&out[0], Outcome::Reply(r) if format!("{:?}", r.lines).contains("schedule-off"))
    );
    let p = pass(&core, utc(2026, 6, 1, 18, 0)).unwrap();
    assert_eq!((p.queued, p.skipped, p.missed), (0, 0, 0));
    assert!(ledger(&core, "daily").is_empty());
}

trait Clockish {
    fn minute_of_day(&self) -> u32;
    fn day_of_month(&self) -> u32;
    fn hour_of_day(&self) -> u32;
}

impl<Z: chrono::TimeZone> Clockish for DateTime<Z> {
    fn minute_of_day(&self) -> u32 {
        use chrono::Timelike;
        self.hour() * 60 + self.minute()
    }
    fn day_of_month(&self) -> u32 {
        use chrono::Datelike;
        self.day()
    }
    fn hour_of_day(&self) -> u32 {
        use chrono::Timelike;
        self.hour()
    }
}

// ---- the real binary ----

/// `mnemo schedule list --json` (over the control socket while serving).
async fn schedule_list(dir: &std::path::Path) -> Value {
    let (code, out, err) = run_mnemo(dir, &["schedule", "list", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn digests_sent(tg: &FakeTelegram) -> Vec<(i64, String)> {
    tg.sent_messages(USER)
        .into_iter()
        .filter(|(_, t)| t.contains("Your day"))
        .collect()
}

/// Waits until `n` digests were sent (the log in the panic otherwise).
async fn wait_digests(tg: &FakeTelegram, bot: &ServeProcess, n: usize) {
    let waited = tokio::time::timeout(T, async {
        while digests_sent(tg).len() < n {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if waited.is_err() {
        panic!("{n} digests not sent; log:\n{}", bot.log_text());
    }
}

fn serve(dir: &std::path::Path, tg: &FakeTelegram) -> ServeProcess {
    serve_daily(dir, tg, "*/10 * * * * *")
}

fn serve_daily(dir: &std::path::Path, tg: &FakeTelegram, daily: &str) -> ServeProcess {
    ServeProcess::spawn_env(
        dir,
        &tg.url(),
        &USER.to_string(),
        TOKEN,
        &[
            ("MNEMO_DIGEST__DAILY", daily),
            ("MNEMO_DIGEST__WEEKLY", ""),
            ("MNEMO_DIGEST__TIMEZONE", "Europe/Berlin"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_every_ten_seconds_while_there_is_news_each_sent_once_with_its_message_id() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut bot = serve(&data, &tg);
    tg.push(tg::text(USER, 1, "todo: call the bank about the loan"));
    tg.wait_sent(USER, 1, T).await;
    wait_digests(&tg, &bot, 1).await;
    let first = digests_sent(&tg);
    assert_eq!(first.len(), 1);
    assert!(first[0].1.contains("call the bank"), "{}", first[0].1);
    // It carries a ✅ for the to-do.
    assert!(!tg.buttons(first[0].0).is_empty());
    // The ledger names the message.
    let list = schedule_list(&data).await;
    let sent: Vec<&Value> = list["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "sent")
        .collect();
    assert_eq!(sent.len(), 1, "{list}");
    assert_eq!(sent[0]["message_id"], first[0].0);
    assert_eq!(sent[0]["chat_id"], USER);
    assert_eq!(sent[0]["source"], "extractive");
    assert_eq!(sent[0]["late"], false);
    let sched = &list["schedules"][0];
    assert_eq!(sched["timezone"], "Europe/Berlin");
    assert_eq!(sched["cron"], "*/10 * * * * *");
    assert!(sched["next_run"].is_string());
    // Nothing new: no digest for a while (slots are recorded as skipped).
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(digests_sent(&tg).len(), 1);
    let list = schedule_list(&data).await;
    assert!(list["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["state"] == "skipped"));
    // News: the next digest has the new note only.
    tg.push(tg::text(USER, 2, "we decided to sell the old car"));
    wait_digests(&tg, &bot, 2).await;
    let second = &digests_sent(&tg)[1].1;
    assert!(
        second.contains("sell the old car") && !second.contains("call the bank"),
        "{second}"
    );
    bot.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_sending_a_digest_never_posts_the_slot_twice() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // One slot a minute, 12 s from now: the note is acknowledged well before.
    let second = (Utc::now().timestamp() + 12).rem_euclid(60);
    let daily = format!("{second} * * * * *");
    let mut bot = serve_daily(&data, &tg, &daily);
    tg.push(tg::text(USER, 1, "remember the dentist on friday"));
    tg.wait_sent(USER, 1, T).await;
    // The next sendMessage (the digest) never gets an answer.
    tg.script("sendMessage", Script::Hang);
    tg.wait_for("the digest on the wire", T, |calls| {
        calls.iter().any(|c| {
            c.method.eq_ignore_ascii_case("sendMessage")
                && c.params["_status"] == "scripted"
                && c.params["text"].as_str().unwrap_or("").contains("Your day")
        })
    })
    .await;
    bot.child.start_kill().unwrap();
    bot.child.wait().await.unwrap();
    // Back up: the slot is uncertain, not sent again; later slots see
    // nothing new (the uncertain digest covered the note).
    let mut bot = serve_daily(&data, &tg, &daily);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let list = schedule_list(&data).await;
    let rows = list["ledger"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["state"] == "uncertain"), "{list}");
    assert!(!rows.iter().any(|r| r["state"] == "sent"), "{list}");
    let attempts = tg
        .calls("sendMessage")
        .iter()
        .filter(|c| {
            c.params["text"].as_str().unwrap_or("").contains("dentist")
                && c.params["text"].as_str().unwrap_or("").contains("Your day")
        })
        .count();
    assert_eq!(attempts, 1, "one attempt, never a second copy");
    bot.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_schedule_and_tz_commands() {
    let bot = InProcBot::start_with(&[USER], |c| {
        c.digest.timezone = "UTC".into();
        c.digest.weekly = String::new();
    })
    .await;
    let tg = &bot.tg;
    let mut n = 0;
    let mut say = |text: &str| {
        n += 1;
        tg.push(tg::text(USER, n, text));
        n as usize
    };
    let k = say("we decided to paint the kitchen blue");
    tg.wait_sent(USER, k, T).await;
    let k = say("/digest");
    let out = tg.wait_sent(USER, k, T).await;
    let d = out.last().unwrap();
    assert!(
        d.contains("Your day") && d.contains("paint the kitchen"),
        "{d}"
    );
    let k = say("/digest year");
    assert!(tg
        .wait_sent(USER, k, T)
        .await
        .last()
        .unwrap()
        .contains("Usage: /digest"));
    let k = say("/tz Mars/Olympus");
    assert!(tg
        .wait_sent(USER, k, T)
        .await
        .last()
        .unwrap()
        .contains("not a time zone I know"));
    let k = say("/tz Europe/Berlin");
    assert!(tg
        .wait_sent(USER, k, T)
        .await
        .last()
        .unwrap()
        .contains("Europe/Berlin"));
    let k = say("/schedule");
    let s = tg.wait_sent(USER, k, T).await.last().unwrap().clone();
    assert!(
        s.contains("Europe/Berlin") && s.contains("0 0 20 * * *"),
        "{s}"
    );
    let k = say("/schedule off");
    let s = tg.wait_sent(USER, k, T).await.last().unwrap().clone();
    assert!(s.contains("off"), "{s}");
    assert!(!bot.core.store().chat_digest(USER).unwrap().unwrap().enabled);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_digest_and_schedule_list_print_json_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = Store::open(&data).unwrap();
        store
            .write(|tx| {
                tx.insert_note(mnemo::store::NewNote {
                    chat_id: USER,
                    user_id: USER,
                    message_id: Some(1),
                    text: "urgent: renew the car insurance".into(),
                    created_at: mnemo::core::now_ms() - 3_600_000,
                    source: mnemo::store::Source::Telegram,
                    author: None,
                })
            })
            .unwrap();
    }
    let chat = USER.to_string();
    let (code, out, err) = run_mnemo(
        &data,
        &["digest", "--period", "day", "--chat", &chat, "--json"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    for key in [
        "chat_id", "period", "from", "to", "text", "sections", "source", "tokens", "cost_usd",
    ] {
        assert!(d.get(key).is_some(), "{key} missing: {d}");
    }
    assert_eq!(d["chat_id"], USER);
    assert_eq!(d["period"], "day");
    assert_eq!(d["source"], "extractive");
    assert!(d["text"]
        .as_str()
        .unwrap()
        .contains("renew the car insurance"));
    assert_eq!(d["sections"]["priorities"].as_array().unwrap().len(), 1);
    assert!(d["tokens"]["input"].is_u64() && d["tokens"]["output"].is_u64());
    let (code, _, err) = run_mnemo(&data, &["digest", "--period", "year"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("--period"), "{err}");
    // Schedules are listed per chat (none allowed here: the defaults).
    let list = schedule_list(&data).await;
    let names: Vec<&str> = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["daily", "weekly"]);
    assert!(list["ledger"].as_array().unwrap().is_empty());
}

// ---- with an LLM (the fake server, the real reqwest client) ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_digest_carries_the_llm_summary_and_its_source_in_the_ledger() {
    use support::fake_llm::FakeLlm;
    let llm = FakeLlm::start().await;
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = llm.openai_url();
    let mut bot = ServeProcess::spawn_env(
        &data,
        &tg.url(),
        &USER.to_string(),
        TOKEN,
        &[
            ("MNEMO_DIGEST__DAILY", "*/10 * * * * *"),
            ("MNEMO_DIGEST__WEEKLY", ""),
            ("MNEMO_LLM__PROVIDER", "openai"),
            ("MNEMO_LLM__BASE_URL", &url),
            ("MNEMO_LLM__MODEL", "test-model"),
            ("MNEMO_LLM__API_KEY", "sk-test-secret"),
        ],
    );
    tg.push(tg::text(USER, 1, "we decided to repaint the fence in june"));
    tg.wait_sent(USER, 1, T).await;
    wait_digests(&tg, &bot, 1).await;
    let (_, text) = &digests_sent(&tg)[0];
    assert!(
        text.contains("What the period held (#1"),
        "the summary, citing the note: {text}"
    );
    assert!(
        text.contains("repaint the fence"),
        "the extractive sections stay: {text}"
    );
    assert_eq!(llm.passes()[..3], ["draft", "critique", "refine"]);
    let list = schedule_list(&data).await;
    let sent = list["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "sent")
        .cloned()
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(sent["source"], "llm:openai/test-model");
    assert!(
        !bot.log_text().contains("sk-test-secret"),
        "the key is never logged"
    );
    // /stats shows the spend (no price configured: cost unknown).
    tg.push(tg::text(USER, 2, "/stats"));
    let out = tg.wait_sent(USER, 3, T).await;
    let stats = out
        .iter()
        .find(|t| t.contains("Summaries (LLM)"))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(stats.contains("cost unknown"), "{stats}");
    bot.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_llm_fails_the_digest_is_extractive_and_says_so() {
    use support::fake_llm::{FakeLlm, Reply};
    let llm = FakeLlm::start().await;
    llm.always(Reply::error(500, "api_error", "boom"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = Store::open(&data).unwrap();
        store
            .write(|tx| {
                tx.insert_note(mnemo::store::NewNote {
                    chat_id: USER,
                    user_id: USER,
                    message_id: Some(1),
                    text: "todo: book the train to Hamburg".into(),
                    created_at: mnemo::core::now_ms() - 60_000,
                    source: mnemo::store::Source::Telegram,
                    author: None,
                })
            })
            .unwrap();
    }
    let url = llm.openai_url();
    let out = support::mnemo(&data)
        .args(["digest", "--chat", &USER.to_string(), "--json"])
        .env("MNEMO_LLM__PROVIDER", "openai")
        .env("MNEMO_LLM__BASE_URL", &url)
        .env("MNEMO_LLM__MODEL", "test-model")
        .env("MNEMO_LLM__MAX_RETRIES", "1")
        .env("MNEMO_LLM__BACKOFF_MS", "10")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["source"], "extractive");
    let text = d["text"].as_str().unwrap();
    assert!(text.contains("summary service was unavailable"), "{text}");
    assert!(text.contains("book the train"), "{text}");
    assert_eq!(llm.count(), 2, "one call and one retry, no storm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_across_two_slots_the_restart_sends_one_digest_and_records_the_rest_as_missed() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Three slots 5 s apart, 15 s from now, then none for a minute.
    let s0 = Utc::now().timestamp() + 15;
    let secs: Vec<String> = (0..3)
        .map(|i| ((s0 + 5 * i).rem_euclid(60)).to_string())
        .collect();
    let daily = format!("{} * * * * *", secs.join(","));
    let mut bot = serve_daily(&data, &tg, &daily);
    tg.push(tg::text(USER, 1, "the plumber comes on tuesday"));
    tg.wait_sent(USER, 1, T).await;
    bot.child.start_kill().unwrap();
    bot.child.wait().await.unwrap();
    // Down while all three slots pass.
    let back = s0 + 10 + 2;
    while Utc::now().timestamp() < back {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut bot = serve_daily(&data, &tg, &daily);
    wait_digests(&tg, &bot, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let digests = digests_sent(&tg);
    assert_eq!(digests.len(), 1, "one catch-up, never a burst");
    assert!(digests[0].1.contains("plumber"));
    let list = schedule_list(&data).await;
    let states: Vec<&str> = list["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "sent").count(), 1, "{list}");
    assert_eq!(
        states.iter().filter(|s| **s == "missed").count(),
        2,
        "{list}"
    );
    bot.child.kill().await.unwrap();
}
