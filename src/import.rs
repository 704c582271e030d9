//! Importing chat history from Telegram Desktop's "Export chat history"
//! (machine-readable JSON).
//!
//! Two shapes are accepted: a single-chat export
//! (`{"name", "type", "id", "messages": [...]}`) and a full-account export
//! (`{"chats": {"list": [<single-chat export>...]}}`). A message's `text` is
//! a string or an array of strings and entity objects (`{"type", "text"}`);
//! it is flattened to plain text. Service messages and messages without text
//! (photos without caption, stickers, …) are skipped and counted.
//!
//! The whole file is parsed before anything is written, so a malformed file
//! is rejected with its line and column and nothing is imported. Writing then
//! happens in batches, each one transaction; a message already present (same
//! chat id and message id) is counted as a duplicate, so re-running an
//! interrupted or repeated import stores nothing twice.

use std::cell::RefCell;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// One message worth importing.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedMessage {
    /// The export's chat id (stored in that chat's own import space, see
    /// [`crate::store::import_chat`]).
    pub chat_id: i64,
    pub message_id: i64,
    pub author: Option<String>,
    pub user_id: i64,
    /// Unix milliseconds.
    pub date: i64,
    pub text: String,
}

/// The parsed file: messages to import and how many were skipped.
#[derive(Debug, Default)]
pub struct Parsed {
    pub messages: Vec<ImportedMessage>,
    pub skipped: u64,
    pub chats: u64,
}

/// What a streaming pass over an export saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub chats: u64,
    pub messages: u64,
    pub skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a Telegram export: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a Telegram export: {0}")]
    Shape(String),
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The callback refused a message (a write failed).
    #[error("{0}")]
    Sink(String),
}

/// Latest date accepted: 9999-12-31T23:59:59Z (unix seconds).
const MAX_SECS: i64 = 253_402_300_799;

/// Parses a whole export from `r` into memory (tests and small files; the
/// CLI streams with [`parse_each`]).
pub fn parse(r: impl Read) -> Result<Parsed, ImportError> {
    let mut messages = Vec::new();
    let c = parse_each(r, |m| {
        messages.push(m);
        Ok(())
    })?;
    Ok(Parsed {
        messages,
        skipped: c.skipped,
        chats: c.chats,
    })
}

/// Streams an export from `r`, calling `f` with each message worth
/// importing, in file order. Memory is bounded by the largest single
/// message, not by the file: the `messages` arrays are walked one element at
/// a time (serde visitors over `serde_json`'s reader), never held whole.
/// (Only when a chat's `"id"` comes after its `"messages"` — Telegram
/// Desktop writes it before — are that chat's messages held until it ends.)
/// A malformed file is an error naming its line and column, or the chat and
/// message position; messages before it have been passed to `f` already, so
/// callers that must write nothing on error run a first pass that only
/// counts.
pub fn parse_each(
    r: impl Read,
    f: impl FnMut(ImportedMessage) -> Result<(), String>,
) -> Result<Counts, ImportError> {
    let sink = Sink {
        f: RefCell::new(Box::new(f)),
        counts: RefCell::new(Counts::default()),
        failure: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_reader(r);
    let res = RootSeed(&sink).deserialize(&mut de).and_then(|()| de.end());
    if let Some(e) = sink.failure.borrow_mut().take() {
        return Err(e);
    }
    res?;
    let c = *sink.counts.borrow();
    Ok(c)
}

type Callback<'a> = Box<dyn FnMut(ImportedMessage) -> Result<(), String> + 'a>;

struct Sink<'a> {
    f: RefCell<Callback<'a>>,
    counts: RefCell<Counts>,
    /// The error that stopped the walk (serde only carries strings).
    failure: RefCell<Option<ImportError>>,
}

impl Sink<'_> {
    fn fail<E: de::Error>(&self, e: ImportError) -> E {
        let msg = e.to_string();
        self.failure.borrow_mut().get_or_insert(e);
        E::custom(msg)
    }

    fn emit<E: de::Error>(&self, m: ImportedMessage) -> Result<(), E> {
        self.counts.borrow_mut().messages += 1;
        let r = (self.f.borrow_mut())(m);
        r.map_err(|e| self.fail(ImportError::Sink(e)))
    }
}

/// One chat's state while its keys stream by.
#[derive(Default)]
struct ChatState {
    id: Option<i64>,
    /// Messages seen before the chat's id (unusual key order).
    early: Vec<Value>,
    /// Index of the next message in this chat.
    next: usize,
    has_messages: bool,
}

impl ChatState {
    /// Handles one key of a chat object; `false` when it is not a chat key.
    fn key<'de, A: MapAccess<'de>>(
        &mut self,
        sink: &Sink,
        index: u64,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        match key {
            "id" => {
                let v: Value = map.next_value()?;
                let Some(id) = v.as_i64() else {
                    return Err(sink.fail(ImportError::Shape(format!(
                        "chat #{index}: id {v} is not an integer"
                    ))));
                };
                self.id = Some(id);
                for m in std::mem::take(&mut self.early) {
                    self.one(sink, &m)?;
                }
            }
            "messages" => {
                self.has_messages = true;
                map.next_value_seed(MessagesSeed { sink, chat: self })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn one<E: de::Error>(&mut self, sink: &Sink, m: &Value) -> Result<(), E> {
        let Some(chat_id) = self.id else {
            self.early.push(m.clone());
            return Ok(());
        };
        let mi = self.next;
        self.next += 1;
        match message(chat_id, m) {
            Ok(Some(msg)) => sink.emit(msg),
            Ok(None) => {
                sink.counts.borrow_mut().skipped += 1;
                Ok(())
            }
            Err(e) => {
                let id = m
                    .get("id")
                    .map(|v| format!(" (id {v})"))
                    .unwrap_or_default();
                Err(sink.fail(ImportError::Shape(format!(
                    "chat {chat_id}, message #{mi}{id}: {e}"
                ))))
            }
        }
    }

    fn finish<E: de::Error>(self, sink: &Sink, index: u64) -> Result<(), E> {
        if self.id.is_none() {
            return Err(sink.fail(ImportError::Shape(format!("chat #{index} has no id"))));
        }
        sink.counts.borrow_mut().chats += 1;
        Ok(())
    }
}

struct RootSeed<'s, 'a>(&'s Sink<'a>);

impl<'de> DeserializeSeed<'de> for RootSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Telegram export object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let sink = self.0;
        let mut chat = ChatState::default();
        let mut full = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "chats" {
                full = true;
                map.next_value_seed(ChatsSeed(sink))?;
            } else if !chat.key(sink, 0, &key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if chat.has_messages {
            chat.finish(sink, 0)
        } else if full {
            Ok(())
        } else {
            Err(sink.fail(ImportError::Shape(
                "expected \"messages\" (one chat) or \"chats.list\" (full export) at the top level"
                    .into(),
            )))
        }
    }
}

/// `"chats": {"about": …, "list": [chat…]}`.
struct ChatsSeed<'s, 'a>(&'s Sink<'a>);

impl<'de> DeserializeSeed<'de> for ChatsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChatsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a chat \"list\"")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut listed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "list" {
                listed = true;
                map.next_value_seed(ListSeed(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !listed {
            return Err(self
                .0
                .fail(ImportError::Shape("chats.list is missing".into())));
        }
        Ok(())
    }
}

struct ListSeed<'s, 'a>(&'s Sink<'a>);

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("chats.list, an array of chats")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(ChatSeed {
                sink: self.0,
                index,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }
}

struct ChatSeed<'s, 'a> {
    sink: &'s Sink<'a>,
    index: u64,
}

impl<'de> DeserializeSeed<'de> for ChatSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChatSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "chat #{}, an object", self.index)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut chat = ChatState::default();
        while let Some(key) = map.next_key::<String>()? {
            if !chat.key(self.sink, self.index, &key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        chat.finish(self.sink, self.index)
    }
}

struct MessagesSeed<'s, 'a, 'c> {
    sink: &'s Sink<'a>,
    chat: &'c mut ChatState,
}

impl<'de> DeserializeSeed<'de> for MessagesSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MessagesSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("\"messages\", an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // One message at a time: only it is held.
        while let Some(m) = seq.next_element::<Value>()? {
            self.chat.one(self.sink, &m)?;
        }
        Ok(())
    }
}

fn message(chat_id: i64, m: &Value) -> Result<Option<ImportedMessage>, String> {
    if m.get("type").and_then(Value::as_str) != Some("message") {
        return Ok(None);
    }
    let id = m.get("id").and_then(Value::as_i64).ok_or("no numeric id")?;
    let text = flatten(m.get("text").unwrap_or(&Value::Null))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let date = match m.get("date_unixtime") {
        Some(v) => {
            let secs = v
                .as_str()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .or(v.as_i64())
                .ok_or_else(|| format!("bad date_unixtime {v}: not an integer"))?;
            if !(0..=MAX_SECS).contains(&secs) {
                return Err(format!(
                    "bad date_unixtime {secs}: out of range (1970 to 9999)"
                ));
            }
            secs * 1000
        }
        None => {
            let s = m.get("date").and_then(Value::as_str).ok_or("no date")?;
            let ms = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .map_err(|e| format!("bad date {s:?}: {e}"))?
                .and_utc()
                .timestamp_millis();
            if !(0..=MAX_SECS * 1000).contains(&ms) {
                return Err(format!("bad date {s:?}: out of range (1970 to 9999)"));
            }
            ms
        }
    };
    let user_id = m
        .get("from_id")
        .and_then(Value::as_str)
        .and_then(|s| {
            s.trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .parse::<i64>()
                .ok()
        })
        .unwrap_or(0);
    Ok(Some(ImportedMessage {
        chat_id,
        message_id: id,
        author: m.get("from").and_then(Value::as_str).map(str::to_owned),
        user_id,
        date,
        text: text.trim().to_owned(),
    }))
}

/// `"text"` is a string, or an array of strings and `{"type", "text"}`.
fn flatten(v: &Value) -> Result<String, String> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut s = String::new();
            for p in parts {
                match p {
                    Value::String(t) => s.push_str(t),
                    Value::Object(o) => {
                        s.push_str(o.get("text").and_then(Value::as_str).unwrap_or_default())
                    }
                    _ => {
                        return Err(
                            "text array holds something that is neither text nor an entity".into(),
                        )
                    }
                }
            }
            Ok(s)
        }
        _ => Err("text is neither a string nor an array".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SINGLE: &str = r#"{
      "name": "Notes", "type": "personal_chat", "id": 4242,
      "messages": [
        {"id": 1, "type": "service", "date": "2024-01-01T10:00:00", "action": "create_group"},
        {"id": 2, "type": "message", "date": "2024-01-02T10:00:00", "date_unixtime": "1704189600",
         "from": "Ana", "from_id": "user4242", "text": "plain text"},
        {"id": 3, "type": "message", "date": "2024-01-03T11:30:00", "from": "Ana", "from_id": "user4242",
         "text": ["see ", {"type": "link", "text": "https://example.org"}, " now"]},
        {"id": 4, "type": "message", "date": "2024-01-04T10:00:00", "from": "Ana", "photo": "x.jpg", "text": ""}
      ]}"#;

    #[test]
    fn single_chat_export() {
        let p = parse(SINGLE.as_bytes()).unwrap();
        assert_eq!(p.chats, 1);
        assert_eq!(p.skipped, 2);
        assert_eq!(p.messages.len(), 2);
        let m = &p.messages[0];
        assert_eq!(
            (m.chat_id, m.message_id, m.user_id, m.date),
            (4242, 2, 4242, 1_704_189_600_000)
        );
        assert_eq!(m.author.as_deref(), Some("Ana"));
        assert_eq!(p.messages[1].text, "see https://example.org now");
        assert_eq!(p.messages[1].date, 1_704_281_400_000);
    }

    #[test]
    fn full_account_export() {
        let full = format!(
            r#"{{"about": "x", "chats": {{"about": "y", "list": [{SINGLE}, {{"id": 7, "messages": []}}]}}}}"#
        );
        let p = parse(full.as_bytes()).unwrap();
        assert_eq!((p.chats, p.messages.len()), (2, 2));
    }

    #[test]
    fn malformed_files_name_the_position() {
        let e = parse(&b"{\"messages\": [ {\"id\": 1,, }"[..])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1 column"), "{e}");
        let e = parse(&b"{\"foo\": 1}"[..]).unwrap_err().to_string();
        assert!(e.contains("messages"), "{e}");
        let e = parse(&br#"{"id": 1, "messages": [{"type": "message", "id": 5, "date": "yesterday", "text": "x"}]}"#[..])
            .unwrap_err()
            .to_string();
        assert!(e.contains("message #0") && e.contains("bad date"), "{e}");
        let e = parse(&br#"{"messages": []}"#[..]).unwrap_err().to_string();
        assert!(e.contains("no id"), "{e}");
    }

    #[test]
    fn dates_out_of_range_name_the_message() {
        for (date, what) in [
            (r#""date_unixtime": "9223372036854775807""#, "out of range"),
            (r#""date_unixtime": "-99999999999""#, "out of range"),
            (r#""date_unixtime": "soon""#, "not an integer"),
            (r#""date": "-0044-03-15T12:00:00""#, "date"),
        ] {
            let text = format!(
                r#"{{"id": 9, "messages": [
                {{"type": "message", "id": 1, "date": "2024-01-01T00:00:00", "text": "ok"}},
                {{"type": "message", "id": 77, {date}, "text": "x"}}]}}"#
            );
            let e = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(
                e.contains("message #1 (id 77)") && e.contains(what),
                "{date}: {e}"
            );
        }
    }

    #[test]
    fn streams_any_key_order_and_stops_at_a_refusal() {
        // "messages" before "id": held until the id arrives.
        let p = parse(
            &br#"{"messages": [{"type": "message", "id": 1, "date": "2024-01-01T00:00:00", "text": "a"}], "id": 5}"#[..],
        )
        .unwrap();
        assert_eq!((p.chats, p.messages[0].chat_id), (1, 5));
        let mut seen = 0;
        let e = parse_each(SINGLE.as_bytes(), |_| {
            seen += 1;
            Err("disk full".into())
        })
        .unwrap_err();
        assert_eq!((seen, e.to_string()), (1, "disk full".to_string()));
        let e = parse(&b"\0\0\0\0"[..]).unwrap_err().to_string();
        assert!(e.contains("line 1 column 1"), "{e}");
    }
}
