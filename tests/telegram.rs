//! The Telegram channel end to end: the real teloxide Dispatcher long-polls a
//! fake Bot API server on 127.0.0.1.

mod support;

use std::time::Duration;

use support::fake_telegram::{self as tg, Script};
use support::InProcBot;

const OWNER: i64 = 4242;
const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_help_are_answered_and_commands_registered() {
    let bot = InProcBot::start(&[OWNER]).await;
    bot.tg.push(tg::text(OWNER, 1, "/start"));
    bot.tg.push(tg::text(OWNER, 2, "/help"));
    let sent = bot.tg.wait_sent(OWNER, 2, T).await;
    assert!(sent[0].contains("mnemo"), "{sent:?}");
    assert!(
        sent[1].contains("/recall") && sent[1].contains("/forget"),
        "{sent:?}"
    );
    // HTML parse mode is used, and the menu is registered in both locales.
    let calls = bot.tg.calls("sendMessage");
    assert_eq!(calls[0].params["parse_mode"], "HTML");
    let menus = bot.tg.calls("setMyCommands");
    assert_eq!(menus.len(), 2);
    assert!(menus.iter().any(|c| c.params["language_code"] == "de"));
    assert!(menus[0].params["commands"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["command"] == "recall"));
    // Commands are not notes.
    assert_eq!(bot.core.store().count_notes().unwrap(), 0);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_is_stored_acknowledged_and_findable() {
    let bot = InProcBot::start(&[OWNER]).await;
    bot.tg.push(tg::text(
        OWNER,
        10,
        "Dentist appointment moved to Friday 3pm <b>really</b> & more",
    ));
    let sent = bot.tg.wait_sent(OWNER, 1, T).await;
    assert!(sent[0].contains("#1"), "{sent:?}");
    let ack = &bot.tg.calls("sendMessage")[0];
    assert_eq!(
        ack.params["reply_parameters"]["message_id"], 10,
        "the ack quotes the note"
    );

    let note = bot.core.store().note(1).unwrap().expect("stored");
    assert_eq!(note.chat_id, OWNER);
    assert_eq!(note.message_id, Some(10));
    assert!(
        note.text.contains("<b>really</b> & more"),
        "stored verbatim: {}",
        note.text
    );

    bot.tg.push(tg::text(OWNER, 11, "/recall dentist friday"));
    let sent = bot.tg.wait_sent(OWNER, 2, T).await;
    assert!(sent[1].contains("Dentist appointment"), "{sent:?}");
    // User text is escaped for HTML, not interpreted.
    assert!(
        sent[1].contains("&lt;b&gt;really&lt;/b&gt; &amp; more"),
        "{}",
        sent[1]
    );

    bot.tg.push(tg::text(OWNER, 12, "/recent"));
    let sent = bot.tg.wait_sent(OWNER, 3, T).await;
    assert!(sent[2].contains("#1"));
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_once_a_day_and_nothing_is_stored() {
    let bot = InProcBot::start(&[OWNER]).await;
    let stranger = 999_001;
    bot.tg.push(tg::text(stranger, 1, "let me in"));
    bot.tg.push(tg::text(stranger, 2, "my secret note"));
    bot.tg.push(tg::text(stranger, 3, "/recent"));
    bot.tg.push(tg::text(OWNER, 1, "owner note"));
    bot.tg.wait_sent(OWNER, 1, T).await;
    bot.settled().await;
    let refusals = bot.tg.sent_to(stranger);
    assert_eq!(refusals.len(), 1, "one refusal a day: {refusals:?}");
    assert!(
        refusals[0].contains("999001"),
        "shows their id: {refusals:?}"
    );
    assert_eq!(bot.core.store().count_notes().unwrap(), 1);
    assert_eq!(bot.core.store().count_chat_notes(stranger).unwrap(), 0);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_message_updates_its_note() {
    let bot = InProcBot::start(&[OWNER]).await;
    bot.tg
        .push(tg::text(OWNER, 20, "meeting with Anna on Monday"));
    bot.tg.wait_sent(OWNER, 1, T).await;
    bot.tg
        .push(tg::edited(OWNER, 20, "meeting with Priya on Tuesday"));
    let sent = bot.tg.wait_sent(OWNER, 2, T).await;
    assert!(sent[1].contains("#1"), "{sent:?}");
    let note = bot.core.store().note(1).unwrap().unwrap();
    assert_eq!(note.text, "meeting with Priya on Tuesday");
    assert!(note.edited_at.is_some());
    assert_eq!(
        bot.core.store().count_notes().unwrap(),
        1,
        "an edit is not a new note"
    );
    assert!(bot.core.recall("Anna", Some(OWNER), 5).unwrap().is_empty());
    assert_eq!(bot.core.recall("Priya", Some(OWNER), 5).unwrap().len(), 1);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_by_id_and_by_replying_to_the_acknowledgement() {
    let bot = InProcBot::start(&[OWNER]).await;
    bot.tg.push(tg::text(OWNER, 30, "first secret"));
    bot.tg.push(tg::text(OWNER, 31, "second secret"));
    bot.tg.wait_sent(OWNER, 2, T).await;
    // The ack's message id is linked to its note once Telegram accepted it.
    bot.settled().await;
    // Reply /forget to mnemo's acknowledgement of the second note.
    let ack_of_second = bot.tg.sent_messages(OWNER)[1].0;
    bot.tg
        .push(tg::text_reply(OWNER, 32, "/forget", ack_of_second));
    let sent = bot.tg.wait_sent(OWNER, 3, T).await;
    assert!(sent[2].contains("#2"), "{sent:?}");
    bot.tg.push(tg::text(OWNER, 33, "/forget 1"));
    bot.tg.push(tg::text(OWNER, 34, "/forget 1"));
    bot.tg.push(tg::text(OWNER, 35, "/forget"));
    let sent = bot.tg.wait_sent(OWNER, 6, T).await;
    assert!(sent[3].contains("#1"));
    assert!(sent[4].contains("no note #1"), "{sent:?}");
    assert!(sent[5].contains("Usage"), "{sent:?}");
    assert_eq!(bot.core.store().count_notes().unwrap(), 0);
    assert!(bot.core.recall("secret", None, 5).unwrap().is_empty());
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_429_is_honoured_and_the_reply_still_arrives() {
    let bot = InProcBot::start(&[OWNER]).await;
    bot.tg.script("sendMessage", Script::RetryAfter(1));
    bot.tg.push(tg::text(OWNER, 40, "note during a flood wait"));
    let sent = bot.tg.wait_sent(OWNER, 1, T).await;
    assert!(sent[0].contains("#1"));
    let calls = bot.tg.calls("sendMessage");
    assert_eq!(calls.len(), 2, "one refused, one accepted");
    let waited = calls[1].at.duration_since(calls[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retry_after=1 honoured, waited {waited:?}"
    );
    // The entry is removed just after Telegram accepted the message.
    bot.settled().await;
    bot.stop().await.unwrap();
}

/// The message ids the sendMessage calls to `chat` quote, in call order.
fn quoted(bot: &InProcBot, chat: i64) -> Vec<i64> {
    bot.tg
        .calls("sendMessage")
        .iter()
        .filter(|c| c.params["chat_id"].as_i64() == Some(chat) && c.message_id.is_some())
        .map(|c| {
            c.params["reply_parameters"]["message_id"]
                .as_i64()
                .unwrap_or(-1)
        })
        .collect()
}

/// Positions of the accepted sendMessage calls to `chat` among all
/// sendMessage calls.
fn positions(bot: &InProcBot, chat: i64) -> Vec<usize> {
    bot.tg
        .calls("sendMessage")
        .iter()
        .enumerate()
        .filter(|(_, c)| c.params["chat_id"].as_i64() == Some(chat) && c.message_id.is_some())
        .map(|(i, _)| i)
        .collect()
}

async fn outbox_settles(
    bot: &InProcBot,
    what: &str,
    cond: impl Fn(&[(u64, mnemo::core::Reply)]) -> bool,
) {
    let deadline = std::time::Instant::now() + T;
    loop {
        let outbox = bot.core.outbox(usize::MAX).unwrap();
        if cond(&outbox) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for the outbox to hold {what}: {:?}",
            outbox
                .iter()
                .map(|(s, r)| (*s, r.chat_id))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_chat_behind_its_rate_limit_does_not_delay_another() {
    const A: i64 = 7001;
    const B: i64 = 7002;
    // A's replies trickle at 4 a second after a burst of 1: its 20 take
    // about 5 s; B's bucket is full.
    let bot = InProcBot::start_with(&[A, B], |cfg| {
        cfg.telegram.per_chat_burst = 1;
        cfg.telegram.per_chat_per_sec = 4.0;
        cfg.telegram.global_per_sec = 30.0;
    })
    .await;
    for m in 1..=20 {
        bot.tg.push(tg::text(A, m, &format!("A's note {m}")));
    }
    bot.tg.wait_sent(A, 1, T).await;
    bot.tg.push(tg::text(B, 1, "B's one note"));
    bot.tg.wait_sent(A, 20, Duration::from_secs(30)).await;
    bot.tg.wait_sent(B, 1, T).await;
    bot.settled().await;
    let (a, b) = (positions(&bot, A), positions(&bot, B));
    assert!(
        b[0] < *a.last().unwrap(),
        "B's acknowledgement came before A's last: A at {a:?}, B at {b:?}"
    );
    assert_eq!(
        quoted(&bot, A),
        (1..=20).collect::<Vec<_>>(),
        "A's in order, once each"
    );
    assert_eq!(quoted(&bot, B), vec![1]);
    bot.stop().await.unwrap();
}

/// Telegram's flood wait for one chat (429 with `retry_after` on a send to
/// A only) holds A's replies, in order, for that long and no longer; B's
/// note, sent while A waits, is answered at once, not after A's wait.
/// Lost, duplicated: nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_wait_on_one_chat_holds_only_that_chat() {
    const A: i64 = 7201;
    const B: i64 = 7202;
    const WAIT: u64 = 3;
    let bot = InProcBot::start(&[A, B]).await;
    bot.tg
        .script_chat("sendMessage", A, Script::RetryAfter(WAIT));
    for m in 1..=3 {
        bot.tg.push(tg::text(A, m, &format!("A's note {m}")));
    }
    let refused = |c: &tg::Call| c.params["_status"] == "scripted";
    bot.tg
        .wait_for("A's refused send", T, |calls| calls.iter().any(refused))
        .await;
    let first = bot
        .tg
        .calls("sendMessage")
        .into_iter()
        .find(refused)
        .unwrap();
    assert_eq!(first.params["chat_id"], A);
    bot.tg.push(tg::text(B, 1, "B's note while A waits"));
    bot.tg.wait_sent(B, 1, T).await;
    bot.tg.wait_sent(A, 3, T).await;
    bot.settled().await;
    let calls = bot.tg.calls("sendMessage");
    let accepted = |chat: i64| {
        calls
            .iter()
            .filter(move |c| c.params["chat_id"].as_i64() == Some(chat) && c.message_id.is_some())
    };
    let a_first = accepted(A).next().unwrap().at;
    let b_ack = accepted(B).next().unwrap().at;
    let waited = a_first.duration_since(first.at);
    // For that long, and not (say) twice as long.
    assert!(
        waited >= Duration::from_millis(WAIT * 1000 - 50) && waited < Duration::from_secs(2 * WAIT),
        "A's retry_after={WAIT} honoured, waited {waited:?}"
    );
    // Not held by A's wait at all: answered in well under half of it (a
    // pause of every chat would put B's answer at the end of the wait).
    let b_after = b_ack.saturating_duration_since(first.at);
    assert!(
        b_after < waited / 2,
        "B answered {b_after:?} after A's 429, A resumed after {waited:?}"
    );
    // A's three, in order, each once; B's once; one refused call in all.
    assert_eq!(quoted(&bot, A), vec![1, 2, 3]);
    assert_eq!(quoted(&bot, B), vec![1]);
    assert_eq!(calls.iter().filter(|c| c.message_id.is_none()).count(), 1);
    println!("flood wait {WAIT} s on A: B answered {b_after:?} after A's 429, A resumed after {waited:?}");
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_send_holds_only_its_chat_and_refusals_go_last() {
    const A: i64 = 7101;
    const B: i64 = 7102;
    const STRANGER: i64 = 999_777;
    let bot = InProcBot::start(&[A, B]).await;
    // Telegram does not answer A's sends for now (recorded when released).
    bot.tg.hold(A);
    for m in 1..=20 {
        bot.tg.push(tg::text(A, m, &format!("A's note {m}")));
    }
    let deadline = std::time::Instant::now() + T;
    while bot.tg.waiting(A) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "A's first ack was never sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outbox_settles(&bot, "A's 20 acks", |o| {
        o.iter().filter(|(_, r)| r.chat_id == A).count() == 20
    })
    .await;
    bot.tg.push(tg::text(B, 1, "B's one note"));
    bot.tg.push(tg::text(STRANGER, 1, "let me in"));
    // B is served while A's send hangs.
    bot.tg.wait_sent(B, 1, T).await;
    // The stranger's refusal is queued with A's 20 and B's is gone…
    outbox_settles(&bot, "A's 20 and the refusal", |o| {
        o.iter()
            .any(|(_, r)| r.chat_id == STRANGER && r.low_priority)
            && o.iter().all(|(_, r)| r.chat_id != B)
            && o.len() == 21
    })
    .await;
    // …and waits while A's replies wait.
    assert_eq!(bot.tg.waiting(A), 1, "one send per chat on the wire");
    assert!(bot.tg.sent_to(STRANGER).is_empty());
    assert!(bot.tg.sent_to(A).is_empty());

    bot.tg.release(A);
    bot.tg.wait_sent(A, 20, T).await;
    bot.tg.wait_sent(STRANGER, 1, T).await;
    bot.settled().await;
    let (a, b, s) = (
        positions(&bot, A),
        positions(&bot, B),
        positions(&bot, STRANGER),
    );
    assert!(b[0] < a[0], "B before all of A's: A at {a:?}, B at {b:?}");
    assert!(
        s[0] > *a.last().unwrap(),
        "the refusal after A's last: A at {a:?}, refusal at {s:?}"
    );
    assert_eq!(
        quoted(&bot, A),
        (1..=20).collect::<Vec<_>>(),
        "A's in order, once each"
    );
    assert_eq!(quoted(&bot, B), vec![1]);
    assert_eq!(s.len(), 1);
    assert!(bot.core.outbox(usize::MAX).unwrap().is_empty());
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_replies_and_nothing_breaks() {
    let bot = InProcBot::start(&[OWNER]).await;
    let huge = "x".repeat(5000);
    bot.tg.push(tg::text(OWNER, 50, &huge));
    bot.tg.push(tg::photo(OWNER, 51));
    bot.tg.push(tg::sticker(OWNER, 52));
    bot.tg.push(tg::poll_answer(OWNER));
    bot.tg.push(tg::text(OWNER, 53, "   "));
    bot.tg.push(tg::text(OWNER, 54, "still alive"));
    let sent = bot.tg.wait_sent(OWNER, 5, T).await;
    assert!(
        sent[0].contains("5000") && sent[0].contains("4096"),
        "{sent:?}"
    );
    assert!(sent[1].contains("photo"), "{sent:?}");
    assert!(sent[2].contains("sticker"), "{sent:?}");
    assert!(sent[3].contains("empty"), "{sent:?}");
    assert!(sent[4].contains("#1"), "{sent:?}");
    assert_eq!(bot.core.store().count_notes().unwrap(), 1);
    // Every update, handled or not, leaves the inbox and is confirmed.
    bot.settled().await;
    assert!(bot.core.store().inbox(10).unwrap().is_empty());
    assert_eq!(bot.tg.pending_updates(), 0);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_replies_are_split_below_telegrams_limit() {
    let bot = InProcBot::start(&[OWNER]).await;
    // 20 notes of ~1000 characters with characters that need escaping.
    let body = "<&> ".repeat(75) + &"wörter ".repeat(100);
    for i in 0..20 {
        bot.core
            .handle(mnemo::core::Inbound {
                origin: mnemo::core::Origin::console(),
                chat_id: OWNER,
                user_id: OWNER,
                user_lang: None,
                message_id: None,
                reply_to: None,
                at: 0,
                body: mnemo::core::Body::Text(format!("{i} {body}")),
            })
            .unwrap();
    }
    bot.tg.push(tg::text(OWNER, 60, "/recent 20"));
    let sent = bot.tg.wait_sent(OWNER, 2, T).await;
    bot.settled().await;
    let sent_all = bot.tg.sent_to(OWNER);
    assert!(sent_all.len() >= 2, "{}", sent.len());
    for s in &sent_all {
        assert!(
            s.encode_utf16().count() <= 4096,
            "message of {} units",
            s.encode_utf16().count()
        );
    }
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_follow_the_chat_language() {
    let bot = InProcBot::start(&[OWNER]).await;
    bot.tg.push(tg::text(OWNER, 70, "/lang de"));
    bot.tg.push(tg::text(OWNER, 71, "Zahnarzt am Freitag"));
    let sent = bot.tg.wait_sent(OWNER, 2, T).await;
    assert!(sent[0].contains("Deutsch"), "{sent:?}");
    assert!(sent[1].contains("Gespeichert"), "{sent:?}");
    bot.stop().await.unwrap();
}
