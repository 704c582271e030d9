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

use std::io::Read;

use serde::Deserialize;
use serde_json::Value;

/// One message worth importing.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedMessage {
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

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a Telegram export: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a Telegram export: {0}")]
    Shape(String),
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Deserialize)]
struct Chat {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    messages: Option<Vec<Value>>,
}

/// Parses an export from `r`.
pub fn parse(mut r: impl Read) -> Result<Parsed, ImportError> {
    let mut buf = Vec::new();
    r.read_to_end(&mut buf)?;
    let root: Value = serde_json::from_slice(&buf)?;
    let chats: Vec<Value> = if let Some(list) = root.pointer("/chats/list") {
        list.as_array()
            .cloned()
            .ok_or_else(|| ImportError::Shape("chats.list is not an array".into()))?
    } else if root.get("messages").is_some() {
        vec![root]
    } else {
        return Err(ImportError::Shape(
            "expected \"messages\" (one chat) or \"chats.list\" (full export) at the top level"
                .into(),
        ));
    };
    let mut out = Parsed::default();
    for (ci, chat) in chats.into_iter().enumerate() {
        let chat: Chat = serde_json::from_value(chat)
            .map_err(|e| ImportError::Shape(format!("chat #{ci}: {e}")))?;
        let Some(chat_id) = chat.id else {
            return Err(ImportError::Shape(format!("chat #{ci} has no id")));
        };
        out.chats += 1;
        for (mi, m) in chat.messages.unwrap_or_default().iter().enumerate() {
            match message(chat_id, m) {
                Ok(Some(msg)) => out.messages.push(msg),
                Ok(None) => out.skipped += 1,
                Err(e) => {
                    return Err(ImportError::Shape(format!(
                        "chat {chat_id}, message #{mi}: {e}"
                    )))
                }
            }
        }
    }
    Ok(out)
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
    let date = match m.get("date_unixtime").and_then(|v| {
        v.as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .or(v.as_i64())
    }) {
        Some(secs) => secs * 1000,
        None => {
            let s = m.get("date").and_then(Value::as_str).ok_or("no date")?;
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .map_err(|e| format!("bad date {s:?}: {e}"))?
                .and_utc()
                .timestamp_millis()
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
}
