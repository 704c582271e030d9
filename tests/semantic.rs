//! Semantic memory with the real MiniLM model: recall by meaning through the
//! real Telegram stack, near-duplicates, the durable embed queue and model
//! changes; and the multilingual e5-small model (`[models] embed =
//! "e5-small"`) across languages.

mod support;

use std::time::Duration;

use mnemo::config::Config;
use mnemo::core::{Body, Core, Inbound, Origin, Settings};
use mnemo::memory::dot::dot;
use mnemo::memory::embed::{Embedder, Role};
use mnemo::models::{ModelSet, E5_SMALL};
use mnemo::store::Store;
use support::fake_telegram as tg;
use support::InProcBot;

const OWNER: i64 = 4242;
const T: Duration = Duration::from_secs(20);

fn embedder() -> std::sync::Arc<Embedder> {
    Embedder::shared(&ModelSet::new(support::models_dir()), 1).expect("models fetched by make test")
}

fn e5() -> std::sync::Arc<Embedder> {
    let models = ModelSet::new(support::models_dir()).with_embed(&E5_SMALL);
    Embedder::shared(&models, 1).expect("e5-small fetched by make test (mnemo models fetch --all)")
}

#[test]
fn e5_finds_a_german_note_by_an_english_question() {
    let e = e5();
    assert_eq!(e.model_id(), E5_SMALL.id);
    assert_ne!(e.model_id(), embedder().model_id());
    let notes = [
        "3 Dec 2026: Der Zahnarzttermin ist auf Freitag um 15 Uhr verschoben",
        "3 Dec 2026: Hafermilch und Brot für das Büro kaufen",
        "3 Dec 2026: the bike needs new brake pads before winter",
    ];
    let asks = [
        ("when is my dentist appointment?", 0),
        ("what should I buy for the office?", 1),
        ("Was muss am Fahrrad repariert werden?", 2),
    ];
    let stored = e.embed(Role::Passage, &notes).unwrap();
    for (q, want) in asks {
        let qv = e.embed(Role::Query, &[q]).unwrap().remove(0);
        let cos: Vec<f32> = stored.iter().map(|v| dot(&qv, v)).collect();
        println!("{q:?}: {cos:.3?}");
        let best = (0..notes.len())
            .max_by(|&a, &b| cos[a].total_cmp(&cos[b]))
            .unwrap();
        assert_eq!(best, want, "{q:?} found {:?} ({cos:?})", notes[best]);
    }
    // The prefixes matter: a question embedded as a passage is another vector.
    let q = "when is my dentist appointment?";
    let as_query = e.embed(Role::Query, &[q]).unwrap().remove(0);
    let as_passage = e.embed(Role::Passage, &[q]).unwrap().remove(0);
    assert!(dot(&as_query, &as_passage) < 0.999);
    // MiniLM has no prefixes: both roles give one vector.
    let m = embedder();
    let a = m.embed(Role::Query, &[q]).unwrap().remove(0);
    let b = m.embed(Role::Passage, &[q]).unwrap().remove(0);
    assert!(dot(&a, &b) > 0.9999);
}

/// A core on `dir` with the real model, as `serve` builds it (no buttons).
fn semantic_core(dir: &std::path::Path, cfg: &Config) -> Core {
    Core::with_embedder(
        Store::open(dir).unwrap(),
        Settings::from_config(cfg),
        Some(embedder()),
    )
    .unwrap()
}

fn console(text: &str) -> Inbound {
    Inbound {
        origin: Origin::console(),
        chat_id: 0,
        user_id: 0,
        user_lang: None,
        message_id: None,
        reply_to: None,
        at: mnemo::core::now_ms(),
        body: Body::Text(text.into()),
    }
}

/// Bulk embedding spreads model calls over independent sessions: every
/// vector comes back in its text's place, the same as one text per call.
#[test]
fn several_sessions_return_each_vector_in_its_place() {
    let single = embedder();
    let pool = Embedder::load(&ModelSet::new(support::models_dir()), 2).unwrap();
    assert_eq!(pool.sessions(), 2);
    let owned: Vec<String> = (0..37)
        .map(|i| match i % 4 {
            0 => format!("dentist appointment number {i} moved to Friday"),
            1 => format!("buy {i} apples and a loaf of bread"),
            2 => format!("Zahnarzttermin {i} am Montag um neun"),
            _ => format!("the quarterly report {i} is due before the board meeting on Tuesday"),
        })
        .collect();
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let got = pool.embed_chunks(Role::Passage, &texts, 3).unwrap();
    assert_eq!(got.len(), texts.len());
    let one_by_one: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| single.embed(Role::Passage, &[t]).unwrap().remove(0))
        .collect();
    for (i, v) in got.iter().enumerate() {
        let same = dot(v, &one_by_one[i]);
        assert!(same > 0.999, "text {i}: cosine {same} to its own vector");
        // And not a neighbour's: the nearest one-call vector is its own.
        let nearest = (0..texts.len())
            .map(|j| (j, dot(v, &one_by_one[j])))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert_eq!(nearest.0, i, "text {i} came back as text {}", nearest.0);
    }
    assert!(pool.embed_chunks(Role::Passage, &[], 8).unwrap().is_empty());
}

#[test]
fn the_duplicate_threshold_separates_restatements_from_related_notes() {
    let e = embedder();
    let t = Settings::from_config(&Config::defaults()).duplicate_threshold;
    let same = [
        ("Buy milk and eggs tomorrow", "buy milk and eggs tomorrow!"),
        (
            "Dentist appointment moved to Friday 3pm",
            "dentist appointment moved to friday 3 pm",
        ),
        (
            "Call Anna about the flat viewing",
            "Call Anna about the flat viewing.",
        ),
    ];
    let different = [
        ("Buy milk and eggs tomorrow", "Buy oat milk for the office"),
        (
            "Dentist appointment moved to Friday 3pm",
            "Dentist appointment on Tuesday 10am",
        ),
        (
            "Call Anna about the flat viewing",
            "Call Jonas about the car repair",
        ),
    ];
    // e5's cosines sit higher (0.86–0.91 for these related pairs, ≥ 0.977
    // for the restatements), but the same threshold still separates them.
    let e5 = e5();
    for (i, (a, b)) in same.iter().chain(&different).enumerate() {
        let v = e5.embed(Role::Passage, &[a, b]).unwrap();
        let c = dot(&v[0], &v[1]);
        println!("e5        {c:.3}  {a:?} / {b:?}");
        assert_eq!(c >= t, i < same.len(), "e5: {a:?} / {b:?}: {c}");
    }
    for (a, b) in same {
        let v = e.embed(Role::Passage, &[a, b]).unwrap();
        let c = dot(&v[0], &v[1]);
        println!("same      {c:.3}  {a:?} / {b:?}");
        assert!(c >= t, "{a:?} / {b:?}: {c}");
    }
    for (a, b) in different {
        let v = e.embed(Role::Passage, &[a, b]).unwrap();
        let c = dot(&v[0], &v[1]);
        println!("different {c:.3}  {a:?} / {b:?}");
        assert!(c < t, "{a:?} / {b:?}: {c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_by_meaning_and_duplicates_through_telegram() {
    let bot = InProcBot::start_semantic(&[OWNER]).await;
    bot.tg
        .push(tg::text(OWNER, 1, "tooth appointment moved to Friday 3pm"));
    bot.tg.push(tg::text(OWNER, 2, "buy milk and eggs"));
    bot.tg.push(tg::text(
        OWNER,
        3,
        "the wifi password hint is on the fridge",
    ));
    bot.tg.wait_sent(OWNER, 3, T).await;
    // Wait for the worker to embed them.
    let deadline = std::time::Instant::now() + T;
    while bot.core.store().vector_count().unwrap() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "notes were not embedded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bot.tg
        .push(tg::text(OWNER, 4, "/recall when is the dentist?"));
    let sent = bot.tg.wait_sent(OWNER, 4, T).await;
    let first_hit = sent[3].lines().nth(1).unwrap_or_default();
    assert!(
        first_hit.contains("tooth appointment"),
        "no shared words, found by meaning: {}",
        sent[3]
    );

    // A restatement gets one reply, which names the note already stored; it
    // is kept hidden (not a second memory), and nothing else is said.
    bot.tg.push(tg::text(OWNER, 5, "Buy milk and eggs!"));
    let sent = bot.tg.wait_sent(OWNER, 5, T).await;
    assert!(
        sent[4].contains("#2") && sent[4].contains("buy milk and eggs"),
        "the reply names the stored note: {}",
        sent[4]
    );
    bot.settled().await;
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        assert_eq!(
            bot.tg.sent_to(OWNER).len(),
            5,
            "{:?}",
            bot.tg.sent_to(OWNER)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(bot.core.store().count_notes().unwrap(), 3);
    assert_eq!(bot.core.store().duplicates().unwrap(), vec![(4, 2)]);
    // Replying /forget to that reply forgets the note it named, and its copy.
    let (notice, _) = bot.tg.sent_messages(OWNER)[4].clone();
    bot.tg.push(tg::text_reply(OWNER, 6, "/forget", notice));
    let sent = bot.tg.wait_sent(OWNER, 6, T).await;
    assert!(sent[5].contains("#2"), "{sent:?}");
    assert!(bot.core.store().note(2).unwrap().is_none());
    assert!(bot.core.store().note(4).unwrap().is_none());
    bot.stop().await.unwrap();
}

/// A repeat the acknowledgement could not recognise (its original had no
/// vector yet) is hidden by the embed worker: kept, so its ack and ↩ still
/// work, but counted, listed and found once — and nothing more is said.
#[test]
fn a_repeat_found_after_its_acknowledgement_is_hidden_silently() {
    let dir = tempfile::tempdir().unwrap();
    let keys = mnemo::buttons::Keyring::load_or_create(dir.path(), None, 0, 0).unwrap();
    let mut cfg = Config::defaults();
    cfg.telegram.allowed_user_ids = vec![OWNER];
    // The model is "busy" at every acknowledgement: the worker decides.
    cfg.notes.repeat_check_ms = 0;
    let core = semantic_core(dir.path(), &cfg).with_keyring(keys);
    let text = |id: u64, t: &str| support::telegram_event(OWNER, id, Body::Text(t.into()));
    // Neither note is embedded when it is acknowledged (no worker runs).
    let a = core
        .handle(text(1, "renew the passport before June"))
        .unwrap();
    let b = core
        .handle(text(2, "Renew the passport before June!"))
        .unwrap();
    for (o, id) in [(&a, "#1"), (&b, "#2")] {
        let mnemo::core::Outcome::Reply(r) = &o[0] else {
            panic!("{o:?}")
        };
        assert_eq!(r.lines[0].key, "note-saved", "{o:?}");
        assert!(format!("{:?}", r.lines[0]).contains(&id[1..]), "{o:?}");
    }
    assert_eq!(core.store().outbox_len().unwrap(), 2);
    core.embed_all_pending(|_, _| {}).unwrap();
    let store = core.store();
    assert_eq!(store.duplicates().unwrap(), vec![(2, 1)]);
    assert_eq!(store.count_notes().unwrap(), 1);
    assert!(store.note(2).unwrap().is_some(), "kept, not deleted");
    assert_eq!(store.outbox_len().unwrap(), 2, "nothing more is said");
    let hits = core.recall("passport renewal", Some(OWNER), 5).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.note.id).collect::<Vec<_>>(),
        vec![1],
        "found once"
    );
    assert_eq!(core.stats().unwrap().memories, 1);
    // A reindex re-embeds the notes and leaves the hidden repeat hidden.
    let c = core
        .handle(support::telegram_event(
            OWNER,
            3,
            Body::Text("call the bank".into()),
        ))
        .unwrap();
    assert_eq!(c.len(), 1);
    core.reindex(|_, _| {}).unwrap();
    assert_eq!(core.store().count_notes().unwrap(), 2);
    assert_eq!(
        core.store().vector_count().unwrap(),
        2,
        "no vector for the repeat"
    );
    assert_eq!(core.store().embed_queue_len().unwrap(), 0);
}

/// The acknowledgement itself recognises a repeat once the original has its
/// vector: one reply naming it and the repeat kept hidden, on the console
/// too (an edit making it a note of its own again: `store::notes` tests).
#[test]
fn a_repeat_is_answered_with_the_note_already_stored() {
    let dir = tempfile::tempdir().unwrap();
    let core = semantic_core(dir.path(), &Config::defaults());
    core.handle(console("the spare key is under the blue flowerpot"))
        .unwrap();
    core.embed_all_pending(|_, _| {}).unwrap();
    let out = core
        .handle(console("The spare key is under the blue flowerpot."))
        .unwrap();
    let mnemo::core::Outcome::Reply(r) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(out.len(), 1);
    assert_eq!(r.lines[0].key, "note-repeat", "{out:?}");
    assert_eq!(r.note_id, Some(1));
    assert_eq!(core.store().count_notes().unwrap(), 1);
    assert_eq!(core.store().duplicates().unwrap(), vec![(2, 1)]);
    assert_eq!(core.recall("spare key", None, 5).unwrap().len(), 1);
    // A related but different note is stored.
    let out = core
        .handle(console("the spare car key is in the drawer"))
        .unwrap();
    let mnemo::core::Outcome::Reply(r) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(r.lines[0].key, "note-saved", "{out:?}");
}

#[test]
fn queued_embeddings_survive_a_restart_and_a_model_change_reembeds() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::from_config(&Config::defaults());
    // A process without the model (or killed before embedding) leaves a queue.
    {
        let core = Core::new(Store::open(dir.path()).unwrap(), settings.clone()).unwrap();
        for t in [
            "alpha note about gardening",
            "beta note about taxes",
            "gamma note about cycling",
        ] {
            core.handle(console(t)).unwrap();
        }
        assert_eq!(core.store().embed_queue_len().unwrap(), 3);
        assert_eq!(core.store().vector_count().unwrap(), 0);
    }
    // The next process with the model drains it, once.
    {
        let core = Core::with_embedder(
            Store::open(dir.path()).unwrap(),
            settings.clone(),
            Some(embedder()),
        )
        .unwrap();
        assert_eq!(core.embed_all_pending(|_, _| {}).unwrap(), 3);
        assert_eq!(
            core.embed_all_pending(|_, _| {}).unwrap(),
            0,
            "nothing embedded twice"
        );
        assert_eq!(core.store().vector_count().unwrap(), 3);
        assert_eq!(
            core.recall("bicycle rides", None, 1).unwrap()[0].note.text,
            "gamma note about cycling"
        );
        // An edit while queued re-embeds the new text.
        core.store()
            .write(|tx| {
                tx.edit_note(1, "alpha note about sailing".into(), 5)
                    .map(|_| ())
            })
            .unwrap();
        core.embed_all_pending(|_, _| {}).unwrap();
    }
    // Vectors from another model are never mixed in: all are re-embedded.
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| tx.reset_vectors("some-other-model/512"))
            .unwrap();
        // The other model embeds everything (512-d vectors) and drains its queue.
        let queued = store.embed_queue(10).unwrap();
        assert_eq!(queued.len(), 3);
        store
            .write(|tx| {
                for (id, seq, _) in &queued {
                    assert!(tx.put_vector(*id, *seq, "some-other-model/512", &[0.5; 512])?);
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(
            (
                store.vector_count().unwrap(),
                store.embed_queue_len().unwrap()
            ),
            (3, 0)
        );
        let core = Core::with_embedder(store, settings.clone(), Some(embedder())).unwrap();
        assert_eq!(
            core.store().embed_queue_len().unwrap(),
            3,
            "model change queues every note"
        );
        core.embed_all_pending(|_, _| {}).unwrap();
        assert_eq!(
            core.store().vector_model().unwrap(),
            Some(mnemo::core::vector_space(&embedder()))
        );
        assert_eq!(
            core.recall("boats on the sea", None, 1).unwrap()[0].note.id,
            1
        );
    }
    // Each vector names its space: a stray vector of another model (or one
    // with NaN) under the current model's name is not loaded; its note is
    // embedded again, and only that one.
    {
        let store = Store::open(dir.path()).unwrap();
        let space = mnemo::core::vector_space(&embedder());
        store
            .write(|tx| {
                tx.enqueue_embed(2)?;
                tx.enqueue_embed(3)?;
                Ok(())
            })
            .unwrap();
        let queued = store.embed_queue(10).unwrap();
        store
            .write(|tx| {
                let (_, s2, _) = queued.iter().find(|q| q.0 == 2).unwrap();
                let (_, s3, _) = queued.iter().find(|q| q.0 == 3).unwrap();
                assert!(tx.put_vector(2, *s2, "some-other-model/512", &[0.5; 512])?);
                assert!(tx.put_vector(3, *s3, &space, &[f32::NAN; 384])?);
                Ok(())
            })
            .unwrap();
        assert_eq!(store.vector_model().unwrap(), Some(space));
        let core = Core::with_embedder(store, settings.clone(), Some(embedder())).unwrap();
        let mut queued: Vec<u64> = core
            .store()
            .embed_queue(10)
            .unwrap()
            .iter()
            .map(|q| q.0)
            .collect();
        queued.sort();
        assert_eq!(queued, vec![2, 3], "only the two bad vectors are redone");
        assert_eq!(core.embed_all_pending(|_, _| {}).unwrap(), 2);
        assert_eq!(core.recall("bicycle rides", None, 1).unwrap()[0].note.id, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_counts_for_similar_questions_only() {
    let bot = InProcBot::start_semantic(&[OWNER]).await;
    for (i, text) in [
        "Dentist appointment on Monday at 9",
        "Dr. Weber's practice, phone 030 1234",
        "Bike: chain replaced, brakes adjusted",
    ]
    .iter()
    .enumerate()
    {
        bot.tg.push(tg::text(OWNER, i as i64 + 1, text));
    }
    bot.tg.wait_sent(OWNER, 3, T).await;
    bot.tg
        .push(tg::text(OWNER, 10, "/recall when do I see the dentist"));
    bot.tg.wait_sent(OWNER, 4, T).await;
    let (rid, _) = bot.tg.sent_messages(OWNER).pop().unwrap();
    let rows = bot.tg.buttons(rid);
    let first = bot
        .core
        .recall("when do I see the dentist", Some(OWNER), 1)
        .unwrap()[0]
        .note
        .id;
    let qid = bot.tg.press(OWNER, rid, &rows[0][0].1);
    assert!(bot.tg.wait_answer(&qid, T).await.contains("rank higher"));

    let boost = |q: &str| {
        bot.core
            .recall(q, Some(OWNER), 5)
            .unwrap()
            .into_iter()
            .find(|h| h.note.id == first)
            .map_or(0.0, |h| h.parts.feedback)
    };
    let same = boost("when do I see the dentist");
    let similar = boost("what time is my dentist visit");
    let unrelated = boost("bike brakes");
    println!("feedback boost: same {same:.3}, similar {similar:.3}, unrelated {unrelated:.3}");
    assert!(
        same > 0.25,
        "the same question gets (nearly) the full weight: {same}"
    );
    assert!(similar > 0.0, "a paraphrase still counts: {similar}");
    assert_eq!(unrelated, 0.0, "an unrelated question is not affected");
    bot.stop().await.unwrap();
}

/// Imported chats have several authors: who said something is part of what
/// is indexed and embedded, so a question naming a person finds their words.
/// Message `id` of an imported chat, by `author`, a minute after the one before.
fn turn(chat_id: i64, id: i64, author: &str, text: &str) -> mnemo::import::ImportedMessage {
    mnemo::import::ImportedMessage {
        chat_id,
        message_id: id,
        author: Some(author.into()),
        user_id: id,
        date: 1_700_000_000_000 + id * 60_000,
        text: text.into(),
    }
}

#[test]
fn who_said_it_is_searchable_in_imported_chats() {
    let dir = tempfile::tempdir().unwrap();
    let core = semantic_core(dir.path(), &Config::defaults());
    let msg = |id, author, text| turn(77, id, author, text);
    let msgs = [
        msg(
            1,
            "Caroline",
            "I went to a support group meeting yesterday, it was really moving",
        ),
        msg(
            2,
            "Melanie",
            "I finally finished the painting of the lake at sunrise",
        ),
        msg(
            3,
            "Caroline",
            "Thinking about studying counseling next year",
        ),
        msg(
            4,
            "Melanie",
            "Took the kids camping in the mountains last weekend",
        ),
    ];
    core.import(&msgs, 100, |_, _| {}).unwrap();
    core.embed_all_pending(|_, _| {}).unwrap();
    for (q, want) in [
        ("What did Melanie paint?", 2),
        ("What does Caroline want to study?", 3),
        ("Where did Melanie go with her children?", 4),
    ] {
        let hits = core.recall(q, None, 3).unwrap();
        assert_eq!(
            hits[0].note.message_id,
            Some(want),
            "{q}: {:?}",
            hits.iter().map(|h| &h.note.text).collect::<Vec<_>>()
        );
        assert_eq!(
            hits[0].note.author.as_deref(),
            msgs[want as usize - 1].author.as_deref()
        );
    }
    // Lexical side alone: the author's name is a term of their notes.
    let lexical_only = mnemo::memory::recall::Weights {
        lexical: 1.0,
        vector: 0.0,
        turn_lexical: 1.0,
        turn_vector: 0.0,
        recency: 0.0,
        ..Default::default()
    };
    let hits = core
        .recall_weighted("Caroline", None, 10, &lexical_only)
        .unwrap();
    let mut top: Vec<Option<i64>> = hits[..2].iter().map(|h| h.note.message_id).collect();
    top.sort();
    assert_eq!(top, vec![Some(1), Some(3)]);
    assert!(hits[1].score > hits.get(2).map_or(0.0, |h| h.score));
}

fn reranker() -> std::sync::Arc<mnemo::memory::rerank::Reranker> {
    mnemo::memory::rerank::Reranker::shared(&ModelSet::new(support::models_dir()), 1)
        .expect("reranker fetched by make test")
}

#[test]
fn the_cross_encoder_tells_an_answer_from_a_turn_that_only_shares_the_frame() {
    let r = reranker();
    let q = "How much did Owen pay for the piano?";
    let texts = [
        // The answer, between two other turns.
        "Priya: Did you get it in the end?\nOwen: Yes! The piano was 450 pounds, second hand\nPriya: Bargain",
        // The question's frame ("how much", "pay") without its subject.
        "Priya: How much?\nOwen: 34 quid, whenever\nPriya: Deal",
        // Unrelated.
        "Owen: The garage says the car needs new brakes",
    ];
    let s = r.score(q, &texts).unwrap();
    assert_eq!(s.len(), 3);
    assert!(s[0] > s[1] + 3.0 && s[0] > s[2] + 3.0, "{s:?}");
    // A pair scores the same whatever it is asked with.
    let alone = r.score(q, &texts[..1]).unwrap();
    assert_eq!(alone[0], s[0]);
    assert!(r.score(q, &[]).unwrap().is_empty());
    // A long text, or a long question, is cut, not refused.
    let long = "word ".repeat(2000);
    assert_eq!(r.score(q, &[long.as_str()]).unwrap().len(), 1);
    assert_eq!(r.score(&long, &[texts[0]]).unwrap().len(), 1);
}

/// Without its files: loading names the fix; the lazy reranker the App
/// gives the core is unavailable, and recall over turns goes on with the
/// plain relevance.
#[test]
fn without_its_model_files_the_reranker_names_the_fix_and_recall_goes_on() {
    use mnemo::memory::rerank::Reranker;
    let empty = tempfile::tempdir().unwrap();
    let missing = ModelSet::new(empty.path().into());
    let err = Reranker::load(&missing, 1).err().expect("no model files");
    let msg = format!("{err:#}");
    assert!(msg.contains("mnemo models fetch"), "{msg}");
    let lazy = std::sync::Arc::new(Reranker::lazy(&missing, 1));
    let err = lazy.score("q", &["t"]).unwrap_err();
    assert!(format!("{err:#}").contains("mnemo models fetch"));
    assert!(!lazy.available());

    let dir = tempfile::tempdir().unwrap();
    let core = semantic_core(dir.path(), &Config::defaults()).with_reranker(Some(lazy));
    let msg = |id, author, text| turn(89, id, author, text);
    core.import(
        &[
            msg(1, "Ana", "The piano was 450 pounds"),
            msg(2, "Ben", "Bargain"),
        ],
        100,
        |_, _| {},
    )
    .unwrap();
    core.embed_all_pending(|_, _| {}).unwrap();
    let hits = core.recall("How much was the piano?", None, 5).unwrap();
    assert_eq!(hits[0].note.message_id, Some(1));
    assert!(hits.iter().all(|h| h.parts.rerank.is_none()));
}

/// The cross-encoder in recall: it scores the turns among the first hits
/// (with their neighbours), an answerable question is answered, one about
/// a thing the chat never mentions is not. (What it changes over the plain
/// relevance is measured on tests/data by conversation_eval.)
#[test]
fn a_question_about_what_a_chat_never_mentions_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let core = semantic_core(dir.path(), &Config::defaults()).with_reranker(Some(reranker()));
    let lines = [
        ("Priya", "Owen!! Did you buy it in the end?"),
        ("Owen", "I did. Second-hand piano from a lady in Leeds"),
        ("Priya", "How much?"),
        ("Owen", "450 pounds, and she threw in the stool"),
        ("Priya", "Bargain. Can you play anything yet?"),
        ("Owen", "Chopsticks. Badly"),
        ("Priya", "Lending you 34 quid for the concert tickets btw"),
        ("Owen", "Cheers, I'll pay you back Friday"),
    ];
    let msgs: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, (a, t))| mnemo::import::ImportedMessage {
            chat_id: 88,
            message_id: i as i64 + 1,
            author: Some((*a).into()),
            user_id: if *a == "Owen" { 1 } else { 2 },
            date: 1_700_000_000_000 + i as i64 * 60_000,
            text: (*t).into(),
        })
        .collect();
    core.import(&msgs, 100, |_, _| {}).unwrap();
    core.embed_all_pending(|_, _| {}).unwrap();
    let answered = core
        .recall("How much did Owen pay for the piano?", None, 5)
        .unwrap();
    assert!(answered.iter().take(5).all(|h| h.parts.rerank.is_some()));
    let best = answered.iter().find(|h| h.relevant).expect("answered");
    assert!(
        best.note.text.contains("450") || best.note.text.contains("piano"),
        "{}",
        best.note.text
    );
    let none = core.recall("Which tattoo did Priya get?", None, 5).unwrap();
    assert!(!none.iter().any(|h| h.relevant));
}
