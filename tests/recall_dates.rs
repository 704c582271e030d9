//! Questions that name a time ("yesterday", "vor drei Tagen", "in March
//! 2025") prefer the notes written then, with and without the sentence
//! model, on a real store.

use mnemo::config::Config;
use mnemo::core::{Core, Settings};
use mnemo::memory::embed::Embedder;
use mnemo::models::ModelSet;
use mnemo::store::{NewNote, Source, Store};

const DAY: i64 = 86_400_000;

/// Three shopping notes written 1, 3 and 30 days ago, plus a note from
/// March 2025; the words of the questions below match none of them
/// better than the others ("buy" is not "bought").
fn core(with_model: bool) -> (tempfile::TempDir, Core, Vec<u64>) {
    let now = chrono::Utc::now().timestamp_millis();
    let march = chrono::DateTime::parse_from_rfc3339("2025-03-14T10:00:00Z")
        .unwrap()
        .timestamp_millis();
    core_with(
        with_model,
        &[
            ("Bought oat milk and coffee beans", now - DAY),
            ("Bought a new bike lock", now - 3 * DAY),
            ("Bought winter tyres for the car", now - 30 * DAY),
            ("Bought a birthday present for Anna", march),
        ],
    )
}

/// A real store with `rows` (text, written at) in chat 7, embedded.
fn core_with(with_model: bool, rows: &[(&str, i64)]) -> (tempfile::TempDir, Core, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut ids = Vec::new();
    store
        .write(|tx| {
            for &(text, at) in rows {
                let n = tx.insert_note(NewNote {
                    chat_id: 7,
                    user_id: 7,
                    message_id: None,
                    text: text.into(),
                    created_at: at,
                    source: Source::Console,
                    author: None,
                })?;
                ids.push(n.id);
            }
            Ok(())
        })
        .unwrap();
    let cfg = Config::defaults();
    let embedder = with_model.then(|| {
        Embedder::shared(&ModelSet::new(cfg.models_dir().unwrap()), 1)
            .unwrap_or_else(|e| panic!("{e:#} (make test fetches the models)"))
    });
    let core = Core::with_embedder(store, Settings::from_config(&cfg), embedder).unwrap();
    core.embed_all_pending(|_, _| {}).unwrap();
    (dir, core, ids)
}

fn first(core: &Core, q: &str) -> u64 {
    core.recall(q, Some(7), 4).unwrap()[0].note.id
}

#[test]
fn the_named_time_wins_with_and_without_the_model() {
    for with_model in [false, true] {
        let (_d, core, ids) = core(with_model);
        let m = if with_model { "model" } else { "no model" };
        assert_eq!(first(&core, "What did I buy yesterday?"), ids[0], "{m}");
        assert_eq!(first(&core, "what did I buy three days ago"), ids[1], "{m}");
        assert_eq!(
            first(&core, "Was habe ich vor drei Tagen gekauft?"),
            ids[1],
            "{m}"
        );
        assert_eq!(first(&core, "What did I buy in March 2025?"), ids[3], "{m}");
        // The boost is in the explanation, and only on notes of the time.
        let hits = core
            .recall("What did I buy yesterday?", Some(7), 4)
            .unwrap();
        assert!(hits[0].parts.date > 0.0, "{m}");
        assert!(hits[1..].iter().all(|h| h.parts.date == 0.0), "{m}");
        // No time named: no boost at all.
        let hits = core.recall("What did I buy?", Some(7), 4).unwrap();
        assert!(hits.iter().all(|h| h.parts.date == 0.0), "{m}");
    }
}

#[test]
fn a_time_given_from_an_event_is_found_from_the_events_message() {
    let now = chrono::Utc::now().timestamp_millis();
    let trip = now - 60 * DAY;
    let rows = [
        ("Flew to Lisbon for the conference", trip),
        ("Bought a phone charger", trip - 40 * DAY),
        ("Bought a phone case", trip - 3 * DAY),
        ("Bought a phone stand", trip + 14 * DAY),
        ("Bought a phone cable", trip + 45 * DAY),
    ];
    for with_model in [false, true] {
        let (_d, core, ids) = core_with(with_model, &rows);
        let m = if with_model { "model" } else { "no model" };
        assert_eq!(
            first(
                &core,
                "What phone thing did I buy three days before the Lisbon trip?"
            ),
            ids[2],
            "{m}"
        );
        assert_eq!(
            first(
                &core,
                "which phone thing did I buy two weeks after the Lisbon conference"
            ),
            ids[3],
            "{m}"
        );
        let hits = core
            .recall(
                "phone thing bought two weeks after the Lisbon trip",
                Some(7),
                5,
            )
            .unwrap();
        assert!(hits[0].parts.date > 0.0, "{m}");
        assert!(hits[1..].iter().all(|h| h.parts.date == 0.0), "{m}");
        // An event nothing matches gives no window, not one around the
        // closest message.
        let hits = core
            .recall("phone thing bought two weeks after the wedding", Some(7), 5)
            .unwrap();
        assert!(hits.iter().all(|h| h.parts.date == 0.0), "{m}");
    }
}
