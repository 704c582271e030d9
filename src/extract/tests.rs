//! Unit tests of the extraction: the table of rules, cues and caps, sentence
//! splitting, random notes that must never panic, linear runtime.

use std::time::Duration;

use proptest::prelude::*;

use super::PriorityReason::{Date, Deadline, Important, Urgent};
use super::*;

/// (input, to-dos, decisions, priority)
type Row = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    Option<PriorityReason>,
);

const NONE: &[&str] = &[];

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // ---- English to-dos
    ("todo: buy milk", &["buy milk"], NONE, None),
    ("TODO buy milk", &["buy milk"], NONE, None),
    ("To do: renew passport", &["renew passport"], NONE, None),
    ("- [ ] file the tax return", &["file the tax return"], NONE, None),
    ("- [x] file the tax return", NONE, NONE, None),
    ("I need to renew my passport", &["I need to renew my passport"], NONE, None),
    ("I don't need to go to the office tomorrow.", NONE, NONE, None),
    ("No need to bring anything", NONE, NONE, None),
    ("We must fix the heating before winter.", &["We must fix the heating before winter"], NONE, None),
    // Decided: "must say" is a figure of speech, not a task.
    ("I must say the movie was great.", NONE, NONE, None),
    ("You must be joking", NONE, NONE, None),
    ("I must have left my keys at work", NONE, NONE, None),
    ("The report must be done by Friday", &["The report must be done by Friday"], NONE, Some(Deadline)),
    ("Remember to water the plants", &["Remember to water the plants"], NONE, None),
    ("I remember to this day how cold it was", NONE, NONE, None),
    ("Don't forget to call the dentist", &["Don't forget to call the dentist"], NONE, None),
    ("Call mom tonight", &["Call mom tonight"], NONE, None),
    ("Buy batteries", &["Buy batteries"], NONE, None),
    ("Call me crazy, but I liked it", NONE, NONE, None),
    ("Do I need to bring a gift?", NONE, NONE, None),
    ("To do that, you need a ladder", NONE, NONE, None),
    ("Called mom yesterday, all good.", NONE, NONE, None),
    ("We'll have to see.", NONE, NONE, None),
    ("I have to pick up the kids at 5", &["I have to pick up the kids at 5"], NONE, None),
    ("Call Dr. Smith about the results", &["Call Dr. Smith about the results"], NONE, None),
    // ---- English decisions
    ("We decided to go with Postgres.", NONE, &["We decided to go with Postgres"], None),
    ("Decision: ship on Monday", NONE, &["ship on Monday"], None),
    ("I haven't decided yet", NONE, NONE, None),
    ("Still undecided about the trip", NONE, NONE, None),
    ("We agreed on a budget of 500 euros", NONE, &["We agreed on a budget of 500 euros"], None),
    ("Bob agreed with me about the movie", NONE, NONE, None),
    ("Going with the blue logo", NONE, &["Going with the blue logo"], None),
    ("I'm going with my sister to Paris", NONE, NONE, None),
    ("We will go with plan B", NONE, &["We will go with plan B"], None),
    ("Should we go with Postgres?", NONE, NONE, None),
    // ---- English priority
    ("Urgent: the server is down", NONE, NONE, Some(Urgent)),
    ("Send the invoice asap", NONE, NONE, Some(Urgent)),
    ("Fix the leak!!", NONE, NONE, Some(Urgent)),
    ("This is not urgent", NONE, NONE, None),
    ("A non-urgent question about lunch", NONE, NONE, None),
    ("Rent is due on the 1st", NONE, NONE, Some(Deadline)),
    ("The delay was due to the rain", NONE, NONE, None),
    ("Submit the form by Friday", NONE, NONE, Some(Deadline)),
    ("Project deadline moved", NONE, NONE, Some(Deadline)),
    ("No deadline for this one", NONE, NONE, None),
    ("It's important to rest", NONE, NONE, Some(Important)),
    ("Not that important, just a thought", NONE, NONE, None),
    ("Dentist appointment 2026-01-31", NONE, NONE, Some(Date)),
    ("Meeting on Jan 31", NONE, NONE, Some(Date)),
    ("Pay rent 01/02", NONE, NONE, Some(Date)),
    ("I rate it 7/10, open 24/7, half is 1/2", NONE, NONE, None),
    ("Version 1.2.3 released, score 3.5.", NONE, NONE, None),
    // ---- German to-dos
    ("TODO: Steuererklärung abgeben", &["Steuererklärung abgeben"], NONE, None),
    ("Ich muss noch die Reifen wechseln", &["Ich muss noch die Reifen wechseln"], NONE, None),
    ("Ich muss sagen, das Essen war super", NONE, NONE, None),
    ("Das muss schön sein", NONE, NONE, None),
    ("Das Auto muss bis Freitag fertig sein", &["Das Auto muss bis Freitag fertig sein"], NONE, Some(Deadline)),
    ("Ich muss morgen nicht arbeiten", NONE, NONE, None),
    ("Nicht vergessen: Geschenk für Oma", &["Nicht vergessen: Geschenk für Oma"], NONE, None),
    ("Denk dran, den Müll rauszubringen", &["Denk dran, den Müll rauszubringen"], NONE, None),
    ("Milch kaufen", &["Milch kaufen"], NONE, None),
    ("Mama anrufen", &["Mama anrufen"], NONE, None),
    ("Ich will das nicht kaufen", NONE, NONE, None),
    ("Steuer erledigen bis 31.05.", &["Steuer erledigen bis 31.05"], NONE, Some(Deadline)),
    ("Was soll ich kaufen?", NONE, NONE, None),
    // ---- German decisions
    ("Wir haben entschieden, das Haus zu verkaufen", NONE, &["Wir haben entschieden, das Haus zu verkaufen"], None),
    ("Wir haben uns noch nicht für eine Farbe entschieden", NONE, NONE, None),
    ("Entscheidung: wir fahren im Mai nach Rom", NONE, &["wir fahren im Mai nach Rom"], None),
    ("Beschlossen: neues Dach im Herbst", NONE, &["neues Dach im Herbst"], None),
    ("Wir haben uns auf Freitag geeinigt", NONE, &["Wir haben uns auf Freitag geeinigt"], None),
    ("Wir nehmen den Zug um acht", NONE, &["Wir nehmen den Zug um acht"], None),
    ("Wir nehmen an, dass es regnet", NONE, NONE, None),
    ("Wir nehmen an der Konferenz teil", NONE, NONE, None),
    ("Das Spiel endete unentschieden", NONE, NONE, None),
    // ---- German priority
    ("Das ist dringend!", NONE, NONE, Some(Urgent)),
    ("Es eilt nicht", NONE, NONE, None),
    ("Nicht so wichtig", NONE, NONE, None),
    ("Sehr wichtig für die Reise", NONE, NONE, Some(Important)),
    ("Abgabe bis Freitag", NONE, NONE, Some(Deadline)),
    ("Tschüss, bis morgen!", NONE, NONE, None),
    ("Ich bin von Montag bis Freitag in Berlin", NONE, NONE, None),
    ("Die Frist endet bald", NONE, NONE, Some(Deadline)),
    ("Spätestens am 3. März", NONE, NONE, Some(Deadline)),
    ("Die Rechnung ist überfällig", NONE, NONE, Some(Deadline)),
    ("Die Miete ist am Ersten fällig", NONE, NONE, Some(Deadline)),
    ("Zufällig Anna getroffen, sehr auffällig", NONE, NONE, None),
    ("Die Kündigungsfrist ist kurzfristig", NONE, NONE, Some(Deadline)),
    ("Langfristig wollen wir umziehen", NONE, NONE, None),
    ("Termin am 31.01.", NONE, NONE, Some(Date)),
    ("Treffen am 3. Mai mit Anna", NONE, NONE, Some(Date)),
    // ---- structure
    ("Einkaufsliste:\n- Milch\n- Eier\n\nSonst nichts", &["Milch", "Eier"], NONE, None),
    ("Decisions:\n- use redb\n- no tantivy yet", NONE, &["use redb", "no tantivy yet"], None),
    ("TODO:\nmilk\neggs\n\nThe weather was nice", &["milk", "eggs"], NONE, None),
    (
        "Meeting went fine. TODO: send the notes. We decided to meet weekly.",
        &["send the notes"],
        &["We decided to meet weekly"],
        None,
    ),
    ("Buy milk. Buy milk. Call Bob", &["Buy milk", "Call Bob"], NONE, None),
    ("", NONE, NONE, None),
    ("   \n\n\t ", NONE, NONE, None),
];

#[test]
fn table() {
    assert!(TABLE.len() >= 30);
    let mut failures = Vec::new();
    for &(text, todos, decisions, priority) in TABLE {
        let got = extract(text);
        let want = (todos.to_vec(), decisions.to_vec(), priority);
        let have = (
            got.todos.iter().map(String::as_str).collect::<Vec<_>>(),
            got.decisions.iter().map(String::as_str).collect::<Vec<_>>(),
            got.priority.as_ref().map(|p| p.reason),
        );
        if have != want {
            failures.push(format!(
                "{text:?}\n   want {want:?}\n   have {have:?} (cue {:?})",
                got.priority.map(|p| p.cue)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        TABLE.len(),
        failures.join("\n")
    );
}

#[test]
fn priority_cue_and_strongest_reason() {
    let p = extract("Dentist 2026-03-01.\nSubmit the form by next Friday.")
        .priority
        .unwrap();
    assert_eq!((p.reason, p.cue.as_str()), (Deadline, "by next Friday"));
    let p = extract("Important: dinner plans\nThe roof leaks, urgent!")
        .priority
        .unwrap();
    assert_eq!((p.reason, p.cue.as_str()), (Urgent, "urgent"));
    let p = extract("Abgabe bis zum 31.1. im Büro").priority.unwrap();
    assert_eq!((p.reason, p.cue.as_str()), (Deadline, "bis zum 31.1."));
    assert!(Urgent < Deadline && Deadline < Important && Important < Date);
}

#[test]
fn items_are_capped_and_trimmed() {
    let many: String = (0..50).map(|i| format!("todo: thing {i}\n")).collect();
    let got = extract(&many);
    assert_eq!(got.todos.len(), MAX_ITEMS);
    assert_eq!(got.todos[0], "thing 0");

    let long = format!("todo: {}", "word ".repeat(100));
    let item = &extract(&long).todos[0];
    assert_eq!(item.chars().count(), MAX_ITEM_CHARS);
    assert!(item.ends_with('…'));

    let spaced = extract("todo:   buy \t  oat   milk  ;");
    assert_eq!(spaced.todos, ["buy oat milk"]);

    let unicode = format!("todo: {}", "ä".repeat(500));
    let item = &extract(&unicode).todos[0];
    assert_eq!(item.chars().count(), MAX_ITEM_CHARS);
}

#[test]
fn input_beyond_the_cap_is_ignored() {
    let filler = "x".repeat(MAX_INPUT_BYTES);
    assert_eq!(
        extract(&format!("{filler}\ntodo: late")),
        Extracted::default()
    );
    let early = extract(&format!("todo: early\n{filler}"));
    assert_eq!(early.todos, ["early"]);
    // The cut lands inside a multi-byte character without panicking.
    let s = format!("{}ä todo: x", "a".repeat(MAX_INPUT_BYTES - 1));
    assert_eq!(cap(&s, MAX_INPUT_BYTES).len(), MAX_INPUT_BYTES - 1);
    let _ = extract(&s);
}

#[test]
fn sentences_split_where_expected() {
    let mut got = Vec::new();
    for_each_sentence(
        "Call Dr. Smith. Then rest! ok? fine; bis 31.01. muss ich. Am 3. Mai.",
        |s| got.push(s.to_string()),
    );
    assert_eq!(
        got,
        [
            "Call Dr. Smith.",
            "Then rest! ok? fine",
            "bis 31.01. muss ich.",
            "Am 3. Mai."
        ]
    );
}

/// Words that trigger the cues, so random notes exercise every branch.
const VOCAB: &[&str] = &[
    "todo:",
    "TODO",
    "to do:",
    "- [ ]",
    "- [x]",
    "[",
    "]",
    "need to",
    "must",
    "be",
    "say",
    "muss",
    "nicht",
    "sein",
    "fertig",
    "remember to",
    "don't",
    "forget",
    "call",
    "buy",
    "kaufen",
    "decided",
    "agreed",
    "going with",
    "my",
    "wir nehmen",
    "an,",
    "teil",
    "entschieden",
    "urgent",
    "asap",
    "!!",
    "!",
    "?",
    ".",
    ";",
    "…",
    "not",
    "no",
    "by",
    "bis",
    "von",
    "Friday",
    "morgen",
    "tomorrow",
    "due",
    "to",
    "deadline",
    "Frist",
    "fällig",
    "31.01.",
    "3.",
    "Mai",
    "Jan",
    "31",
    "2026-01-31",
    "7/10",
    "01/02",
    "24/7",
    "1.2.3",
    "\n",
    "\n\n",
    "Einkaufsliste:",
    "Decisions:",
    "ä",
    "ß",
    "🔁",
    "\u{0301}",
    "Dr.",
    "  ",
    "\t",
    "x",
];

fn vocab_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCAB), 0..300).prop_map(|w| w.join(" "))
}

fn check_invariants(got: &Extracted) -> Result<(), TestCaseError> {
    prop_assert!(got.todos.len() <= MAX_ITEMS && got.decisions.len() <= MAX_ITEMS);
    for item in got.todos.iter().chain(&got.decisions) {
        prop_assert!(
            !item.is_empty() && item.chars().count() <= MAX_ITEM_CHARS,
            "{item:?}"
        );
        prop_assert_eq!(item.trim(), item.as_str());
    }
    if let Some(p) = &got.priority {
        prop_assert!(!p.cue.is_empty() && p.cue.chars().count() <= MAX_ITEM_CHARS);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_unicode_never_panics(text in any::<String>()) {
        check_invariants(&extract(&text))?;
    }

    #[test]
    fn cue_soup_never_panics(text in vocab_text()) {
        check_invariants(&extract(&text))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Up to 1 MB: only the first MAX_INPUT_BYTES are read, so the cost
    /// is bounded whatever the size.
    #[test]
    fn huge_input_is_capped(unit in prop_oneof![vocab_text(), any::<String>()], size in 0usize..=1 << 20) {
        let unit = if unit.is_empty() { "x".to_string() } else { unit };
        let mut text = String::with_capacity(size + unit.len());
        while text.len() < size {
            text.push_str(&unit);
        }
        let got = extract(&text);
        check_invariants(&got)?;
        prop_assert_eq!(got, extract(cap(&text, MAX_INPUT_BYTES)));
    }
}

/// Time of `reps` calls on `text`.
/// The CPU time this thread spent extracting `text` `reps` times: unlike
/// wall time, it does not grow while other processes hold the cores (the
/// test suite runs beside builds and other tests on 2 cores).
fn time(text: &str, reps: u32) -> Duration {
    let start = thread_cpu();
    for _ in 0..reps {
        std::hint::black_box(extract(std::hint::black_box(text)));
    }
    thread_cpu().saturating_sub(start)
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into; the clock id is a
    // constant every Linux has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// time(8x)/time(1x), each the least disturbed of several samples taken
/// alternately, so background load hits both sizes alike.
fn ratio(one: &str, eight: &str) -> f64 {
    let mut reps = 1;
    while time(one, reps) < Duration::from_millis(2) && reps < 1 << 16 {
        reps *= 2;
    }
    let (mut t1, mut t8) = (Duration::MAX, Duration::MAX);
    for _ in 0..9 {
        t1 = t1.min(time(one, reps));
        t8 = t8.min(time(eight, reps));
    }
    t8.as_secs_f64() / t1.as_secs_f64().max(1e-9)
}

fn repeat_to(unit: &str, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + unit.len());
    while s.len() + unit.len() <= bytes {
        s.push_str(unit);
    }
    s
}

/// Runtime grows linearly: 8× the input takes well under 20× the time
/// (a quadratic blow-up would be ~64×). Sizes stay below the input cap,
/// and only ratios from the same run are compared.
#[test]
fn runtime_scales_linearly() {
    let shapes: &[(&str, &str)] = &[
        (
            "cue soup, one line",
            "must need to bis by muss nicht 31.01 1/1 due urgent not going with decided ",
        ),
        ("short lines", "- [ ] buy milk by Friday\n"),
        (
            "sentences",
            "We decided. Call Bob! Muss das sein? Dr. X. 3. Mai. ",
        ),
        ("dots and bangs", "1.1.1.1.!!!...???……;;; a.b.c. "),
        (
            "whitespace runs",
            "by                          \t   bis            ",
        ),
        (
            "unicode",
            "Früh müssen wir 🔁 überfällig Äpfel kaufen, spätestens März 3 ",
        ),
        ("no cues", "the quick brown fox jumps over the lazy dog "),
    ];
    let small = MAX_INPUT_BYTES / 8;
    let mut report = Vec::new();
    for (name, unit) in shapes {
        let one = repeat_to(unit, small);
        let eight = repeat_to(unit, 8 * small);
        // A real quadratic stays at ~64 on every attempt; a burst of
        // load on a busy machine does not repeat three times.
        let mut best = f64::MAX;
        for _ in 0..3 {
            best = best.min(ratio(&one, &eight));
            if best < 20.0 {
                break;
            }
        }
        report.push(format!("{name}: {best:.1}"));
        assert!(
            best < 20.0,
            "{name}: time(8x)/time(1x) = {best:.1} (so far: {report:?})"
        );
    }
    eprintln!("extract time(8x)/time(1x): {}", report.join(", "));
}
