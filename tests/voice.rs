//! Voice notes end to end with real audio: synthetic speech (espeak-ng +
//! opusenc) sent through the fake Bot API as real voice messages, downloaded
//! by the real client, decoded, transcribed by whisper.cpp with the converted
//! tiny.en model, stored and answered. Assertions are on key words: espeak's
//! voice is not a human one, and tiny.en makes mistakes on it.

mod support;

use std::time::{Duration, Instant};

use mnemo::store::{Source, VoiceState};
use support::fake_telegram as tg;
use support::speech::voice_note;
use support::InProcBot;

const OWNER: i64 = 4242;
const T: Duration = Duration::from_secs(60);

/// Waits until a sent message to OWNER satisfies `pred`; returns (id, text).
async fn wait_reply(bot: &InProcBot, what: &str, pred: impl Fn(&str) -> bool) -> (i64, String) {
    let deadline = Instant::now() + T;
    loop {
        if let Some(m) = bot
            .tg
            .sent_messages(OWNER)
            .into_iter()
            .find(|(_, t)| pred(t))
        {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "no reply {what}; sent: {:?}",
            bot.tg.sent_to(OWNER)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_note_becomes_a_recallable_memory() {
    let bot = InProcBot::start(&[OWNER]).await;
    let ogg = voice_note("Remember to buy oat milk and call the plumber on Tuesday.");
    bot.tg.add_file("v1", ogg.clone());
    bot.tg.push(tg::voice(OWNER, 1, "v1", 4, ogg.len() as u64));

    let (rid, reply) = wait_reply(&bot, "with the transcript", |t| {
        t.contains("Voice note saved")
    })
    .await;
    let l = lower(&reply);
    assert!(
        l.contains("milk") && l.contains("plumber"),
        "key words transcribed: {reply}"
    );
    assert!(!reply.contains("[BLANK_AUDIO]"));
    assert!(
        !bot.tg.calls("sendChatAction").is_empty(),
        "typing… was shown"
    );
    let labels: Vec<String> = bot
        .tg
        .buttons(rid)
        .into_iter()
        .flatten()
        .map(|b| b.0)
        .collect();
    assert_eq!(labels, ["🔁 Re-transcribe", "↩ Undo"]);

    let note = bot
        .core
        .store()
        .note(1)
        .unwrap()
        .expect("stored as note #1");
    assert_eq!(note.source, Source::Voice);
    assert_eq!(note.message_id, Some(1), "linked to the voice message");
    let meta = note.voice.clone().expect("voice metadata");
    assert_eq!(meta.file_id, "v1");
    assert!(
        meta.duration_ms > 2000 && meta.duration_ms < 8000,
        "{meta:?}"
    );
    assert!(meta.confidence > 0.0 && meta.confidence <= 1.0);
    let audio = bot
        .dir
        .path()
        .join("voice")
        .join(meta.audio.as_deref().unwrap());
    assert_eq!(std::fs::read(&audio).unwrap(), ogg, "the original is kept");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&audio).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        bot.core.store().voice_job_count().unwrap(),
        0,
        "the job is done"
    );

    // The same speech as a WAV attachment (a document with an audio type).
    let wav = std::fs::read(support::speech::jfk_wav()).unwrap();
    bot.tg.add_file("doc", wav.clone());
    bot.tg.push(tg::document(
        OWNER,
        3,
        "doc",
        wav.len() as u64,
        "audio/x-wav",
    ));
    let (_, jfk) = wait_reply(&bot, "for a WAV attachment", |t| {
        t.contains("Voice note saved as <b>#2")
    })
    .await;
    assert!(lower(&jfk).contains("country"), "{jfk}");

    bot.tg.push(tg::text(OWNER, 2, "/recall plumber"));
    let (_, found) = wait_reply(&bot, "to /recall", |t| t.contains("Best matches")).await;
    assert!(found.contains("#1") && found.contains("voice"), "{found}");

    // 🔁 transcribes the kept audio again into the same note.
    let data = bot.tg.buttons(rid)[0][0].1.clone();
    let qid = bot.tg.press(OWNER, rid, &data);
    assert!(bot.tg.wait_answer(&qid, T).await.contains("again"));
    let (_, again) = wait_reply(&bot, "after 🔁", |t| t.contains("transcribed again")).await;
    assert!(lower(&again).contains("plumber"), "{again}");
    assert_eq!(
        bot.core.store().count_notes().unwrap(),
        2,
        "re-transcription replaces, never adds (the WAV is #2)"
    );

    // ↩ removes the note and its audio.
    let undo = bot.tg.buttons(rid)[0][1].1.clone();
    let qid = bot.tg.press(OWNER, rid, &undo);
    assert!(bot.tg.wait_answer(&qid, T).await.contains("removed"));
    assert_eq!(bot.core.store().count_notes().unwrap(), 1);
    assert!(!audio.exists(), "forgetting a voice note deletes its audio");
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_audio_is_explained_and_kept() {
    let bot = InProcBot::start(&[OWNER]).await;
    // A corrupt voice note: a real one with its middle overwritten.
    let mut bad = voice_note("This one will not survive.");
    let mid = bad.len() / 2;
    bad.truncate(mid);
    bot.tg.add_file("cut", bad.clone());
    bot.tg.push(tg::voice(OWNER, 1, "cut", 2, bad.len() as u64));
    let (_, r) = wait_reply(&bot, "for a cut-off note", |t| {
        t.contains("could not transcribe")
    })
    .await;
    assert!(r.contains("cannot be decoded") && r.contains("kept"), "{r}");

    // Not audio at all, sent as an audio file with an audio mime type.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake".to_vec();
    bot.tg.add_file("png", png.clone());
    bot.tg
        .push(tg::audio(OWNER, 2, "png", 3, png.len() as u64, "audio/ogg"));
    // A zero-length file.
    bot.tg.add_file("empty", Vec::new());
    bot.tg.push(tg::voice(OWNER, 3, "empty", 1, 0));
    let deadline = Instant::now() + T;
    while bot
        .tg
        .sent_to(OWNER)
        .iter()
        .filter(|t| t.contains("could not transcribe"))
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "{:?}", bot.tg.sent_to(OWNER));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = bot.tg.sent_to(OWNER).join("\n");
    assert!(
        sent.contains("not audio") || sent.contains("not an audio"),
        "{sent}"
    );
    assert!(sent.contains("empty"), "{sent}");

    // Too big and too long are refused before any download.
    bot.tg
        .push(tg::voice(OWNER, 4, "nope", 10, 25 * 1024 * 1024));
    bot.tg.push(tg::voice(OWNER, 5, "nope", 3 * 3600, 1000));
    wait_reply(&bot, "for a too big file", |t| t.contains("20 MB")).await;
    wait_reply(&bot, "for a too long note", |t| t.contains("the limit is")).await;
    assert!(bot
        .tg
        .calls("getFile")
        .iter()
        .all(|c| c.params["file_id"] != "nope"));

    // Nothing was stored as a note; what was fetched is kept for a retry.
    assert_eq!(bot.core.store().count_notes().unwrap(), 0);
    let failed = bot.core.store().voice_jobs(VoiceState::Failed).unwrap();
    assert_eq!(failed.len(), 3, "{failed:?}");
    let cut = failed.iter().find(|j| j.file_id == "cut").unwrap();
    let kept = bot
        .dir
        .path()
        .join("voice")
        .join(cut.audio.as_deref().unwrap());
    assert_eq!(std::fs::read(kept).unwrap(), bad);
    bot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_fails_plainly_and_is_retried_once_fixed() {
    let bot = InProcBot::start_with(&[OWNER], |c| {
        c.voice.model = "/nonexistent/ggml-model.bin".into()
    })
    .await;
    let ogg = voice_note("The spare key is under the blue flower pot.");
    bot.tg.add_file("v", ogg.clone());
    bot.tg.push(tg::voice(OWNER, 1, "v", 3, ogg.len() as u64));
    let (_, r) = wait_reply(&bot, "about the model", |t| {
        t.contains("could not transcribe")
    })
    .await;
    assert!(
        r.contains("speech model") && r.contains("mnemo models fetch"),
        "{r}"
    );
    assert_eq!(
        bot.core
            .store()
            .voice_jobs(VoiceState::Failed)
            .unwrap()
            .len(),
        1
    );

    // The owner fixes the config and restarts: the note is transcribed.
    let mut bot = bot;
    bot.cfg.voice.model = String::new();
    let bot = bot.restart().await;
    let (_, r) = wait_reply(&bot, "after the fix", |t| t.contains("Voice note saved")).await;
    let l = lower(&r);
    assert!(l.contains("key") && l.contains("flower"), "{r}");
    assert_eq!(bot.core.store().count_notes().unwrap(), 1);
    assert_eq!(
        bot.tg
            .sent_to(OWNER)
            .iter()
            .filter(|t| t.contains("could not transcribe"))
            .count(),
        1,
        "told once"
    );
    bot.stop().await.unwrap();
}

/// `kill -9` while the real `mnemo serve` transcribes: after a restart the
/// voice note is transcribed, stored and answered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_transcription_stores_and_answers_exactly_once() {
    let tg = tg::FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ogg = voice_note(&"Pick up the parcel at the post office before six. ".repeat(4));
    tg.add_file("long", ogg.clone());
    tg.push(tg::voice(OWNER, 7, "long", 12, ogg.len() as u64));

    // Whichever side of the kill the transcription ends on, its reply is
    // not delivered by the first process: a kill between Telegram taking a
    // reply and the outbox commit would send it twice (replies are
    // at-least-once), which is not what this test is about.
    tg.script("sendMessage", tg::Script::Hang);
    let mut serve = support::ServeProcess::spawn(&data, &tg.url(), &OWNER.to_string(), tg::TOKEN);
    serve
        .wait_log(T, |l| l.contains("transcribing voice note"))
        .await;
    serve.kill9();
    serve.wait_exit(Duration::from_secs(10)).await;
    tg.clear_scripts();
    let saved_before = tg
        .sent_to(OWNER)
        .iter()
        .filter(|t| t.contains("Voice note saved"))
        .count();

    let mut serve = support::ServeProcess::spawn(&data, &tg.url(), &OWNER.to_string(), tg::TOKEN);
    let deadline = Instant::now() + T;
    while tg
        .sent_to(OWNER)
        .iter()
        .filter(|t| t.contains("Voice note saved"))
        .count()
        < 1
    {
        assert!(
            Instant::now() < deadline,
            "no transcript after the restart; log:\n{}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a duplicate every chance to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    serve.term();
    assert!(serve.wait_exit(Duration::from_secs(10)).await.success());
    let replies: Vec<String> = tg
        .sent_to(OWNER)
        .into_iter()
        .filter(|t| t.contains("Voice note saved"))
        .collect();
    assert_eq!(
        replies.len(),
        1,
        "exactly one transcript reply (before the kill: {saved_before}): {replies:?}"
    );
    assert!(lower(&replies[0]).contains("parcel"), "{}", replies[0]);
    assert_eq!(
        tg.calls("download").len(),
        1,
        "the audio was downloaded once, before the kill"
    );

    let store = mnemo::store::Store::open(&data).unwrap();
    assert_eq!(store.count_notes().unwrap(), 1, "exactly one note");
    assert_eq!(store.voice_job_count().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_transcribes_files_and_retries_failed_notes() {
    let dir = tempfile::tempdir().unwrap();
    let jfk = support::speech::jfk_wav();
    let jfk = jfk.to_str().unwrap();
    let (code, out, err) = support::run_mnemo(dir.path(), &["transcribe", "--json", jfk]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = v["text"].as_str().unwrap().to_lowercase();
    assert!(
        text.contains("ask not") && text.contains("country"),
        "{text}"
    );
    assert!(v["avg_confidence"].as_f64().unwrap() > 0.5);
    assert!(v["note_id"].is_null(), "nothing stored without --save");

    let junk = dir.path().join("notes.txt");
    std::fs::write(&junk, "not audio").unwrap();
    let (code, _, err) =
        support::run_mnemo(dir.path(), &["transcribe", junk.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not an audio file"), "{err}");

    let ogg = dir.path().join("note.ogg");
    std::fs::write(
        &ogg,
        voice_note("The boiler service is booked for next Thursday."),
    )
    .unwrap();
    let (code, out, err) =
        support::run_mnemo(dir.path(), &["transcribe", "--save", ogg.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("saved as note #1"), "{out}");
    let (code, out, _) = support::run_mnemo(dir.path(), &["recall", "--json", "boiler"]).await;
    assert_eq!(code, 0);
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits[0]["source"], "voice", "{out}");

    let (code, out, err) = support::run_mnemo(dir.path(), &["retry-voice", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (s["requeued"].as_u64(), s["stored"].as_u64()),
        (Some(0), Some(0)),
        "{out}"
    );
}

/// Retention: old audio is removed, the transcript stays, and 🔁 then says
/// the audio is gone. (The core's voice path without whisper: the
/// transcript is handed in directly.)
#[test]
fn audio_past_its_retention_is_removed_and_the_transcript_kept() {
    use mnemo::buttons::{Action, Keyring, Payload};
    use mnemo::core::{Body, Outcome, VoiceText};
    let dir = tempfile::tempdir().unwrap();
    let keys = Keyring::new([5; 32]);
    let core = support::bare_core(dir.path(), &[OWNER], keys.clone());
    let job = core
        .voice_add_file(OWNER, OWNER, b"OggS fake audio bytes", "memo.ogg")
        .unwrap();
    assert_eq!(job.state, VoiceState::Ready);
    let text = VoiceText {
        text: "Water the tomatoes".into(),
        confidence: 0.9,
        doubtful: vec![],
        language: "en".into(),
        audio_ms: 1500,
    };
    let id = core
        .voice_transcribed(job.id, &text)
        .unwrap()
        .expect("stored");
    let note = core.store().note(id).unwrap().unwrap();
    let audio = dir
        .path()
        .join("voice")
        .join(note.voice.as_ref().unwrap().audio.as_deref().unwrap());
    assert!(audio.exists());

    assert_eq!(core.voice_prune_audio(0).unwrap(), 1);
    assert!(!audio.exists());
    let note = core.store().note(id).unwrap().unwrap();
    assert_eq!(note.text, "Water the tomatoes", "the transcript stays");
    assert!(note.voice.unwrap().audio.is_none());

    let data = keys.sign(
        &Payload::new(Action::Retranscribe, id, mnemo::core::now_ms() / 1000).unwrap(),
        OWNER,
        OWNER,
    );
    let ev = support::telegram_event(OWNER, 1, Body::Press(data));
    match core.handle(ev).unwrap().as_slice() {
        [Outcome::Answer(a)] => assert_eq!(a.line.key, "press-audio-gone"),
        other => panic!("{other:?}"),
    }
    assert_eq!(core.store().voice_job_count().unwrap(), 0, "nothing queued");
}

/// The model file appears while mnemo runs (the owner ran `mnemo models
/// fetch`): voice notes that failed for want of it are transcribed without a
/// restart, and the user is not told about the failure twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_comes_back_is_used_without_a_restart() {
    let models = tempfile::tempdir().unwrap();
    let path = models.path().join("ggml-custom.bin");
    let p = path.to_str().unwrap().to_owned();
    let bot = InProcBot::start_with(&[OWNER], |c| {
        c.voice.model = p;
        c.jobs.voice_retry = "every 1s".into();
    })
    .await;
    let ogg = voice_note("Renew the car insurance in March.");
    bot.tg.add_file("v", ogg.clone());
    bot.tg.push(tg::voice(OWNER, 1, "v", 3, ogg.len() as u64));
    wait_reply(&bot, "about the model", |t| {
        t.contains("could not transcribe")
    })
    .await;

    std::os::unix::fs::symlink(support::models_dir().join("ggml-tiny.en.bin"), &path).unwrap();
    let (_, r) = wait_reply(&bot, "once the model is there", |t| {
        t.contains("Voice note saved")
    })
    .await;
    assert!(lower(&r).contains("insurance"), "{r}");
    let told = bot
        .tg
        .sent_to(OWNER)
        .iter()
        .filter(|t| t.contains("could not transcribe"))
        .count();
    assert_eq!(told, 1);
    bot.stop().await.unwrap();
}
