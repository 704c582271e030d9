//! Inline buttons end to end: the real Dispatcher, the fake Bot API, presses
//! as real `callback_query` updates. Every press is answered; only genuine,
//! fresh presses by the user they were issued to change anything.

mod support;

use std::time::Duration;

use mnemo::buttons::{Action, Keyring, Payload};
use mnemo::core::{Body, Outcome};
use support::fake_telegram as tg;
use support::InProcBot;

const OWNER: i64 = 4242;
const OTHER: i64 = 777;
const T: Duration = Duration::from_secs(10);

/// Sends `text` as message `msg_id` and returns the bot's reply (id, text).
async fn say(bot: &InProcBot, msg_id: i64, text: &str) -> (i64, String) {
    let before = bot.tg.sent_messages(OWNER).len();
    bot.tg.push(tg::text(OWNER, msg_id, text));
    bot.tg.wait_sent(OWNER, before + 1, T).await;
    bot.tg.sent_messages(OWNER).pop().expect("a reply")
}

/// Presses `data` on `message_id` as `user` and returns the answer text.
async fn press(bot: &InProcBot, user: i64, message_id: i64, data: &str) -> String {
    let qid = bot.tg.press_in(OWNER, user, message_id, data);
    bot.tg.wait_answer(&qid, T).await
}

/// The labels of row `row` of a message's keyboard once they equal `want`
/// (the markup is edited just after the press is answered).
async fn row_becomes(bot: &InProcBot, message_id: i64, row: usize, want: &[&str]) {
    let deadline = std::time::Instant::now() + T;
    loop {
        let rows = bot.tg.buttons(message_id);
        let got: Vec<&str> = rows
            .get(row)
            .map(|r| r.iter().map(|b| b.0.as_str()).collect())
            .unwrap_or_default();
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "row {row} is {got:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Note ids in the order a recall reply lists them.
fn hit_ids(reply: &str) -> Vec<u64> {
    let re = regex::Regex::new(r"(?m)^\d+\. <b>#(\d+)</b>").unwrap();
    re.captures_iter(reply)
        .map(|c| c[1].parse().unwrap())
        .collect()
}

fn keys(bot: &InProcBot) -> Keyring {
    Keyring::load_or_create(bot.dir.path(), None, 0, mnemo::core::now_ms() / 1000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_changes_the_next_recall_and_marks_the_button() {
    let bot = InProcBot::start(&[OWNER]).await;
    say(
        &bot,
        1,
        "Dentist: Dr. Weber, Hauptstrasse 5, dentist appointment every spring",
    )
    .await;
    say(&bot, 2, "dentist appointment on Monday at 9").await;
    say(&bot, 3, "Buy bread and milk").await;
    let (rid, reply) = say(&bot, 4, "/recall dentist appointment").await;
    let order = hit_ids(&reply);
    assert_eq!(order.len(), 2, "{reply}");
    let rows = bot.tg.buttons(rid);
    assert_eq!(rows.len(), 2, "one row of votes per hit: {rows:?}");
    assert_eq!(
        rows[0].iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
        ["👍 1", "👎 1", "⌛ 1"]
    );
    assert!(rows
        .iter()
        .flatten()
        .all(|(_, d)| (1..=64).contains(&d.len())));

    // 👎 on the first hit: it drops below the second for the same question.
    let answer = press(&bot, OWNER, rid, &rows[0][1].1).await;
    assert!(answer.contains("rank lower"), "{answer}");
    row_becomes(&bot, rid, 0, &["👍 1", "✓ 👎 1", "⌛ 1"]).await;
    row_becomes(&bot, rid, 1, &["👍 2", "👎 2", "⌛ 2"]).await;
    let (_, again) = say(&bot, 5, "/recall dentist appointment").await;
    // First now; the voted-down note is ranked after it, or — below the
    // relevance floor for this question — waits behind "more".
    let ids = hit_ids(&again);
    assert_eq!(ids[0], order[1], "{again}");
    assert!(ids.len() == 1 || ids == [order[1], order[0]], "{again}");

    // Changing the vote to 👍 replaces it (no double counting): first again.
    let answer = press(&bot, OWNER, rid, &rows[0][0].1).await;
    assert!(answer.contains("rank higher"), "{answer}");
    row_becomes(&bot, rid, 0, &["✓ 👍 1", "👎 1", "⌛ 1"]).await;
    let (_, third) = say(&bot, 6, "/recall dentist appointment").await;
    assert_eq!(hit_ids(&third)[0], order[0], "{third}");
    let c = bot.core.store().feedback_counts().unwrap();
    assert_eq!(
        (c.helpful, c.not_helpful),
        (1, 0),
        "one vote per user and memory: {c:?}"
    );
    // Pressing the same vote twice is idempotent.
    press(&bot, OWNER, rid, &rows[0][0].1).await;
    assert_eq!(bot.core.store().feedback_counts().unwrap().helpful, 1);

    let (_, fb) = say(&bot, 7, "/feedback").await;
    assert!(
        fb.contains("👍")
            && fb.contains(&format!("#{}", order[0]))
            && fb.contains("dentist appointment"),
        "{fb}"
    );
    let (_, stats) = say(&bot, 8, "/stats").await;
    assert!(stats.contains("👍 1"), "{stats}");
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outdated_demotes_for_every_question_and_is_shown() {
    let bot = InProcBot::start(&[OWNER]).await;
    say(&bot, 1, "Office wifi password is tulip42").await;
    say(&bot, 2, "The wifi at the office: new password since May").await;
    let (rid, reply) = say(&bot, 3, "/recall office wifi password").await;
    let first = hit_ids(&reply)[0];
    let answer = press(&bot, OWNER, rid, &bot.tg.buttons(rid)[0][2].1).await;
    assert!(answer.contains("outdated"), "{answer}");
    // Another question entirely: the outdated note still ranks lower, marked.
    let (_, other) = say(&bot, 4, "/recall password").await;
    let ids = hit_ids(&other);
    assert_eq!(ids.last(), Some(&first), "{other}");
    assert!(other.contains("outdated"), "{other}");
    let (_, recent) = say(&bot, 5, "/recent").await;
    assert!(recent.contains("⌛"), "{recent}");
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_removes_the_note_once_and_a_replay_is_refused() {
    let bot = InProcBot::start(&[OWNER]).await;
    let (ack, text) = say(&bot, 1, "Parking spot B17").await;
    assert!(text.contains("#1"));
    let rows = bot.tg.buttons(ack);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0].0, "↩ Undo");
    let data = rows[0][0].1.clone();

    let answer = press(&bot, OWNER, ack, &data).await;
    assert!(answer.contains("removed"), "{answer}");
    assert_eq!(bot.core.store().count_notes().unwrap(), 0);
    row_becomes(&bot, ack, 0, &["✓ ↩ Undo"]).await;

    // The same note text again gets a new id; replaying the old press does
    // nothing to it.
    say(&bot, 2, "Parking spot B17").await;
    let answer = press(&bot, OWNER, ack, &data).await;
    assert!(answer.contains("already used"), "{answer}");
    assert_eq!(bot.core.store().count_notes().unwrap(), 1);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_altered_foreign_and_expired_presses_change_nothing() {
    let bot = InProcBot::start(&[OWNER, OTHER]).await;
    let (ack, _) = say(&bot, 1, "Spare key is under the blue pot").await;
    let (rid, _) = say(&bot, 2, "/recall spare key").await;
    let undo = bot.tg.buttons(ack)[0][0].1.clone();
    let vote = bot.tg.buttons(rid)[0][1].1.clone();
    let k = keys(&bot);
    let now = mnemo::core::now_ms() / 1000;

    let mut flipped = undo.clone().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let forged =
        Keyring::new([9; 32]).sign(&Payload::new(Action::Undo, 1, now).unwrap(), OWNER, OWNER);
    let expired = k.sign(
        &Payload::new(Action::Undo, 1, now - 31 * 86_400).unwrap(),
        OWNER,
        OWNER,
    );
    let cases: Vec<(&str, i64, String, &str)> = vec![
        ("flipped bit", OWNER, flipped, "not valid"),
        ("forged tag", OWNER, forged, "not valid"),
        ("garbage", OWNER, "hello".into(), "not valid"),
        ("empty", OWNER, String::new(), "not valid"),
        ("another user's undo", OTHER, undo.clone(), "not valid"),
        ("another user's vote", OTHER, vote.clone(), "not valid"),
        ("expired", OWNER, expired, "expired"),
    ];
    for (what, user, data, want) in cases {
        let answer = press(&bot, user, ack, &data).await;
        assert!(answer.contains(want), "{what}: {answer}");
    }
    assert_eq!(
        bot.core.store().count_notes().unwrap(),
        1,
        "nothing was removed"
    );
    assert_eq!(
        bot.core.store().feedback_counts().unwrap(),
        Default::default(),
        "no vote was recorded"
    );
    assert!(
        bot.tg.buttons(ack)[0][0].0 == "↩ Undo",
        "no button was marked"
    );
    // The genuine press still works afterwards.
    assert!(press(&bot, OWNER, ack, &undo).await.contains("removed"));
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_presses_are_answered_and_ignored() {
    let bot = InProcBot::start(&[OWNER]).await;
    let (ack, _) = say(&bot, 1, "Passport number in the drawer").await;
    let undo = bot.tg.buttons(ack)[0][0].1.clone();
    let answer = press(&bot, 999, ack, &undo).await;
    assert!(answer.contains("private"), "{answer}");
    assert_eq!(bot.core.store().count_notes().unwrap(), 1);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_from_before_a_restart_still_work() {
    let bot = InProcBot::start(&[OWNER]).await;
    let (ack, _) = say(&bot, 1, "Gate code 4711").await;
    let (rid, _) = say(&bot, 2, "/recall gate code").await;
    let undo = bot.tg.buttons(ack)[0][0].1.clone();
    let helpful = bot.tg.buttons(rid)[0][0].1.clone();
    let bot = bot.restart().await;
    assert!(press(&bot, OWNER, rid, &helpful)
        .await
        .contains("rank higher"));
    assert!(press(&bot, OWNER, ack, &undo).await.contains("removed"));
    assert_eq!(bot.core.store().count_notes().unwrap(), 0);
    // The vote's note is gone with it; compaction drops the orphaned vote.
    let c = bot.core.compact_feedback().unwrap();
    assert_eq!((c.folded, c.dropped), (1, 1));
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todos_decisions_and_priorities() {
    let bot = InProcBot::start(&[OWNER]).await;
    let (_, ack) = say(
        &bot,
        1,
        "todo: call the bank\nWe decided to take the night train.",
    )
    .await;
    assert!(!ack.contains("❗"), "{ack}");
    let (_, ack) = say(&bot, 2, "Urgent: renew the passport by Friday").await;
    assert!(
        ack.contains("❗") && ack.contains("Urgent"),
        "flagged as priority: {ack}"
    );
    say(&bot, 3, "I need to return the library books").await;

    let (tid, todos) = say(&bot, 4, "/todos").await;
    assert!(
        todos.contains("call the bank") && todos.contains("library books"),
        "{todos}"
    );
    let rows = bot.tg.buttons(tid);
    let buttons: Vec<&(String, String)> = rows.iter().flatten().collect();
    assert!(buttons.len() >= 2, "{rows:?}");
    // Newest first: button 1 is the library books.
    assert_eq!(buttons[0].0, "✅ 1");
    let answer = press(&bot, OWNER, tid, &buttons[0].1).await;
    assert!(
        answer.contains("Done") && answer.contains("library books"),
        "{answer}"
    );
    assert!(
        press(&bot, OWNER, tid, &buttons[0].1)
            .await
            .contains("already used"),
        "done is single-use"
    );
    let (_, todos) = say(&bot, 5, "/todos").await;
    assert!(
        !todos.contains("library books") && todos.contains("call the bank"),
        "{todos}"
    );

    let (_, decisions) = say(&bot, 6, "/decisions").await;
    assert!(decisions.contains("night train"), "{decisions}");
    let (_, recent) = say(&bot, 7, "/recent").await;
    assert!(
        recent
            .lines()
            .any(|l| l.contains("❗") && l.contains("passport")),
        "{recent}"
    );
    assert!(
        !recent
            .lines()
            .any(|l| l.contains("❗") && l.contains("library")),
        "{recent}"
    );

    // Editing a note re-extracts its items.
    bot.tg
        .push(tg::edited(OWNER, 1, "todo: call the insurance"));
    bot.tg.wait_sent(OWNER, 8, T).await;
    let (_, todos) = say(&bot, 8, "/todos").await;
    assert!(
        todos.contains("insurance") && !todos.contains("bank"),
        "{todos}"
    );
    let s = bot.core.stats().unwrap();
    assert_eq!(
        (s.items.todos_done, s.items.decisions),
        (1, 0),
        "{:?}",
        s.items
    );
    bot.stop().await.unwrap();
}

/// 10,000 random and mutated callback payloads through the core (the same
/// path a press takes after the adapter): none is accepted, nothing changes.
#[test]
fn fuzzed_presses_are_all_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keyring::load_or_create(dir.path(), None, 0, mnemo::core::now_ms() / 1000).unwrap();
    let core = support::bare_core(dir.path(), &[OWNER], keys.clone());
    let now = mnemo::core::now_ms() / 1000;
    let ev = |update_id: u64, body: Body| support::telegram_event(OWNER, update_id, body);
    core.handle(ev(
        1,
        Body::Text("keep me: the fuzzer must not undo this".into()),
    ))
    .unwrap();
    let genuine: Vec<String> = Action::ALL
        .iter()
        .map(|&a| keys.sign(&Payload::new(a, 1, now).unwrap(), OWNER, OWNER))
        .collect();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ \x00\xff";
    let mut accepted = 0;
    let mut batch = Vec::new();
    let mut tested = 0u64;
    let mut i = 0u64;
    while tested < 10_000 {
        i += 1;
        let data: Vec<u8> = if i % 2 == 0 {
            // Mutate a genuine payload: flip, replace, insert or delete bytes.
            let mut d = genuine[(rnd() % genuine.len() as u64) as usize]
                .clone()
                .into_bytes();
            for _ in 0..=(rnd() % 3) {
                let at = (rnd() % d.len().max(1) as u64) as usize;
                match rnd() % 4 {
                    0 if !d.is_empty() => d[at] ^= 1 << (rnd() % 8),
                    1 if !d.is_empty() => {
                        d[at] = ALPHABET[(rnd() % ALPHABET.len() as u64) as usize]
                    }
                    2 => d.insert(
                        at.min(d.len()),
                        ALPHABET[(rnd() % ALPHABET.len() as u64) as usize],
                    ),
                    _ if !d.is_empty() => {
                        d.remove(at);
                    }
                    _ => {}
                }
            }
            d
        } else {
            let len = (rnd() % 70) as usize;
            (0..len)
                .map(|_| ALPHABET[(rnd() % ALPHABET.len() as u64) as usize])
                .collect()
        };
        let data = String::from_utf8_lossy(&data).into_owned();
        if genuine.contains(&data) {
            continue; // a mutation that undid itself
        }
        batch.push(ev(10 + i, Body::Press(data)));
        tested += 1;
        // Batches of presses share one commit (each is still handled alone).
        if batch.len() == 500 || tested == 10_000 {
            for out in core.handle_batch(&batch).unwrap() {
                match out.as_slice() {
                    [Outcome::Answer(a)] if !a.chosen => {}
                    other => {
                        accepted += 1;
                        eprintln!("accepted: {other:?}");
                    }
                }
            }
            batch.clear();
        }
    }
    assert_eq!(accepted, 0);
    assert_eq!(core.store().count_notes().unwrap(), 1);
    assert_eq!(core.store().feedback_counts().unwrap(), Default::default());
}

/// Enough votes to trigger compaction from inside a press (it must not
/// deadlock on the writer lock, and must keep every vote).
#[test]
fn many_votes_compact_the_log_on_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keyring::new([3; 32]);
    let core = support::bare_core(dir.path(), &[OWNER], keys.clone());
    let ev = |update_id: u64, body: Body| support::telegram_event(OWNER, update_id, body);
    for i in 0..3 {
        core.handle(ev(i, Body::Text(format!("note number {i} about tulips"))))
            .unwrap();
    }
    let now = mnemo::core::now_ms() / 1000;
    for i in 0..150u64 {
        let action = [Action::Helpful, Action::NotHelpful, Action::Outdated][(i % 3) as usize];
        let data = keys.sign(&Payload::new(action, 1 + i % 3, now).unwrap(), OWNER, OWNER);
        let out = core.handle(ev(100 + i, Body::Press(data))).unwrap();
        assert!(
            matches!(out.as_slice(), [Outcome::Answer(a)] if a.chosen),
            "{out:?}"
        );
    }
    let store = core.store();
    assert!(
        store.feedback_log_len().unwrap() < 64,
        "compacted along the way"
    );
    assert!(!store.feedback_aggregates().unwrap().is_empty());
    // One vote per memory and user survives: the last one cast.
    let state = store.feedback_state().unwrap();
    assert_eq!(state.values().map(|a| a.votes.len()).sum::<usize>(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_keeps_the_old_key_for_the_grace_period() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = support::run_mnemo(dir.path(), &["rotate-key", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (code, out, _) = support::run_mnemo(dir.path(), &["rotate-key", "--json"]).await;
    assert_eq!(code, 0);
    let second: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_ne!(first["fingerprint"], second["fingerprint"], "a new key");
    let until = second["previous_valid_until"]
        .as_i64()
        .expect("the old key stays valid");
    let now = mnemo::core::now_ms() / 1000;
    assert!(
        (until - now - 7 * 86_400).abs() < 120,
        "valid for the 7-day grace period: {until}"
    );
    let key = dir.path().join(mnemo::buttons::KEY_FILE);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !err.contains(&std::fs::read_to_string(&key).unwrap()),
        "the key is never printed"
    );

    let (code, out, err) = support::run_mnemo(dir.path(), &["rotate-key"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("new button key") && out.contains("stays valid until"),
        "{out}"
    );
    let out = support::mnemo(dir.path())
        .arg("rotate-key")
        .env("MNEMO_CALLBACK_SECRET", "s3cret-long-enough-for-a-key")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MNEMO_CALLBACK_SECRET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_says_nothing_matching_and_keeps_the_rest_behind_more() {
    let bot = InProcBot::start_semantic(&[OWNER]).await;
    say(&bot, 1, "Dentist appointment moved to Friday 3pm").await;
    say(&bot, 2, "Buy bread and milk").await;
    say(
        &bot,
        3,
        "The plumber comes on Tuesday to fix the kitchen sink",
    )
    .await;
    say(&bot, 4, "Lena's birthday present: a red scarf").await;

    // A question none of the four notes answers: said so, the closest one
    // shown as such, the other three behind "More (3)".
    let (rid, reply) = say(&bot, 5, "/recall what did we decide about v2?").await;
    assert!(reply.contains("Nothing matching"), "{reply}");
    assert_eq!(hit_ids(&reply).len(), 1, "{reply}");
    let rows = bot.tg.buttons(rid);
    let more = rows.last().expect("rows")[0].clone();
    assert_eq!(more.0, "More (3)", "{rows:?}");
    let before = bot.tg.sent_messages(OWNER).len();
    let answer = press(&bot, OWNER, rid, &more.1).await;
    assert!(answer.contains("3 more"), "{answer}");
    bot.tg.wait_sent(OWNER, before + 1, T).await;
    let (_, rest) = bot.tg.sent_messages(OWNER).pop().unwrap();
    assert!(rest.contains("Weaker matches"), "{rest}");
    let mut all = hit_ids(&reply);
    all.extend(hit_ids(&rest));
    all.sort_unstable();
    assert_eq!(all, [1, 2, 3, 4], "every note once: {reply} / {rest}");

    // A question one note answers: only that one is shown as a match.
    let (rid, reply) = say(&bot, 6, "/recall when is the dentist?").await;
    assert!(reply.contains("Best matches"), "{reply}");
    assert_eq!(hit_ids(&reply)[0], 1, "{reply}");
    assert!(
        !hit_ids(&reply).contains(&2),
        "bread is no match for the dentist: {reply}"
    );
    assert!(bot.tg.buttons(rid).last().unwrap()[0].0.starts_with("More"));
    bot.stop().await.unwrap();
}
