//! The feedback log and its compaction, on a real redb file: whatever the
//! interleaving of votes and compactions, and whatever a compaction that
//! dies before its commit leaves behind, the votes read back are exactly the
//! fold of all votes in order (one per user and memory, the latest).

use std::collections::HashMap;

use mnemo::store::{Aggregate, FeedbackEvent, NewNote, Source, Store, StoreError, Vote};
use proptest::prelude::*;

fn note(store: &Store, i: i64) -> u64 {
    store
        .write(|tx| {
            tx.insert_note(NewNote {
                chat_id: 1,
                user_id: 1,
                message_id: Some(i),
                text: format!("note {i}"),
                created_at: i,
                source: Source::Telegram,
                author: None,
            })
        })
        .unwrap()
        .id
}

fn ev(note_id: u64, user_id: i64, vote: Vote, at: i64) -> FeedbackEvent {
    FeedbackEvent {
        note_id,
        chat_id: 1,
        user_id,
        vote,
        at,
        query: format!("q{at}"),
        qvec: Some(vec![at as f32, 0.5]),
        qspace: if at % 2 == 0 {
            "m".into()
        } else {
            String::new()
        },
    }
}

/// The reference: fold every event in order.
fn fold(events: &[FeedbackEvent]) -> HashMap<u64, Aggregate> {
    let mut m: HashMap<u64, Aggregate> = HashMap::new();
    for e in events {
        m.entry(e.note_id).or_default().apply(e.clone());
    }
    m
}

#[derive(Debug, Clone)]
enum Step {
    Vote(usize, i64, u8),
    Compact,
    /// A compaction that fails before its commit (a crash mid-way).
    CrashedCompact,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0usize..4, 1i64..4, 0u8..3).prop_map(|(n, u, v)| Step::Vote(n, u, v)),
        1 => Just(Step::Compact),
        1 => Just(Step::CrashedCompact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn compaction_at_any_point_equals_one_fold(steps in prop::collection::vec(step(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let notes: Vec<u64> = (0..4).map(|i| note(&store, i)).collect();
        let mut all = Vec::new();
        for (t, s) in steps.iter().enumerate() {
            match *s {
                Step::Vote(n, user, v) => {
                    let vote = [Vote::Helpful, Vote::NotHelpful, Vote::Outdated][v as usize];
                    let e = ev(notes[n], user, vote, t as i64);
                    store.write(|tx| tx.append_feedback(&e)).unwrap();
                    all.push(e);
                }
                Step::Compact => {
                    store.write(|tx| tx.compact_feedback()).unwrap();
                }
                Step::CrashedCompact => {
                    let log = store.feedback_log_len().unwrap();
                    let aggs = store.feedback_aggregates().unwrap();
                    let r: Result<(), StoreError> = store.write(|tx| {
                        tx.compact_feedback()?;
                        Err(StoreError::Corrupt("simulated crash before commit".into()))
                    });
                    prop_assert!(r.is_err());
                    prop_assert_eq!(store.feedback_log_len().unwrap(), log, "the log is intact");
                    prop_assert_eq!(store.feedback_aggregates().unwrap(), aggs.clone(), "aggregates unchanged");
                }
            }
            prop_assert_eq!(store.feedback_state().unwrap(), fold(&all));
        }
        store.write(|tx| tx.compact_feedback()).unwrap();
        prop_assert_eq!(store.feedback_log_len().unwrap(), 0);
        prop_assert_eq!(store.feedback_aggregates().unwrap(), fold(&all));
        // And it survives reopening the file.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        prop_assert_eq!(store.feedback_state().unwrap(), fold(&all));
    }
}

#[test]
fn a_later_vote_replaces_the_same_users_earlier_one() {
    let mut a = Aggregate::default();
    a.apply(ev(1, 7, Vote::Helpful, 1));
    a.apply(ev(1, 8, Vote::Helpful, 2));
    a.apply(ev(1, 7, Vote::NotHelpful, 3));
    assert_eq!(a.votes.len(), 2);
    assert_eq!(
        a.votes.iter().find(|v| v.user_id == 7).unwrap().vote,
        Vote::NotHelpful
    );
}

#[test]
fn deleting_a_note_drops_its_votes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = note(&store, 1);
    let b = note(&store, 2);
    store
        .write(|tx| tx.append_feedback(&ev(a, 1, Vote::Helpful, 1)))
        .unwrap();
    store.write(|tx| tx.compact_feedback()).unwrap();
    store
        .write(|tx| tx.append_feedback(&ev(a, 2, Vote::Outdated, 2)))
        .unwrap();
    store
        .write(|tx| tx.append_feedback(&ev(b, 2, Vote::Helpful, 3)))
        .unwrap();
    store.write(|tx| tx.delete_note(1, a)).unwrap();
    let state = store.feedback_state().unwrap();
    assert!(
        !state.contains_key(&a),
        "aggregate and logged votes of a deleted note are gone"
    );
    assert_eq!(state[&b].votes.len(), 1);
    let c = store.write(|tx| tx.compact_feedback()).unwrap();
    assert_eq!((c.folded, c.dropped), (2, 1));
    assert_eq!(store.feedback_aggregates().unwrap().len(), 1);
}

#[test]
fn a_damaged_log_entry_is_reported_not_ignored() {
    // Votes are user data: an unreadable one is an error naming it, and the
    // compaction that met it writes nothing.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(mnemo::store::DB_FILE);
    {
        let store = Store::open(dir.path()).unwrap();
        let a = note(&store, 1);
        store
            .write(|tx| tx.append_feedback(&ev(a, 1, Vote::Helpful, 1)))
            .unwrap();
    }
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(mnemo::store::schema::FEEDBACK_LOG)
            .unwrap()
            .insert(99u64, b"{not json".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let e = store.write(|tx| tx.compact_feedback()).unwrap_err();
    assert!(e.to_string().contains("feedback entry 99"), "{e}");
    assert_eq!(
        store.feedback_log_len().unwrap(),
        2,
        "nothing was folded or removed"
    );
}
