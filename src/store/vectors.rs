//! Sentence embeddings: the self-describing layout of a stored vector, and
//! reading and writing the `vectors` table.

use redb::{ReadableTable, ReadableTableMetadata};

use super::schema::*;
use super::{read_note, schema, Store, StoreError, Tx};

/// Little-endian f32s, nothing else (question vectors inside JSON records).
pub fn encode_f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Layout version of a stored vector (the first byte of each `vectors` value).
const VECTOR_FORMAT: u8 = 1;

/// A note's stored embedding, self-describing: format byte (1), the length
/// of the space name (u8), the space name (model id and text layout, see
/// `core::vector_space`), the dimension (u16 LE), then the f32 LE values.
/// A vector never leaves the store without the space it was computed in.
pub fn encode_vector(space: &str, v: &[f32]) -> Vec<u8> {
    let name = &space.as_bytes()[..space.len().min(255)];
    let mut b = Vec::with_capacity(4 + name.len() + 4 * v.len());
    b.push(VECTOR_FORMAT);
    b.push(name.len() as u8);
    b.extend_from_slice(name);
    b.extend_from_slice(&(v.len().min(u16::MAX as usize) as u16).to_le_bytes());
    b.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    b
}

/// (space, vector) of a stored embedding; `None` when the bytes are not a
/// well-formed vector of this layout.
pub fn decode_vector(b: &[u8]) -> Option<(&str, Vec<f32>)> {
    let (&format, rest) = b.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if format != VECTOR_FORMAT || rest.len() < len as usize + 2 {
        return None;
    }
    let (name, rest) = rest.split_at(len as usize);
    let (dim, data) = rest.split_at(2);
    let dim = u16::from_le_bytes([dim[0], dim[1]]) as usize;
    if data.len() != dim * 4 {
        return None;
    }
    Some((std::str::from_utf8(name).ok()?, decode_f32s(data)))
}

/// A note's chat, read from its stored bytes without decoding the rest (a
/// large store's start reads it for every vector); `None` for a damaged
/// note (quarantined by the full decoder, which names what is wrong).
fn chat_of(id: u64, bytes: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct ChatOnly {
        chat_id: i64,
    }
    match serde_json::from_slice::<ChatOnly>(bytes) {
        Ok(c) => Some(c.chat_id),
        Err(_) => read_note(id, bytes).map(|n| n.chat_id),
    }
}

impl Store {
    /// The embedding space the stored vectors belong to.
    pub fn vector_model(&self) -> Result<Option<String>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(META)?;
        Ok(t.get(KEY_VECTOR_MODEL)?
            .map(|g| String::from_utf8_lossy(g.value()).into_owned()))
    }

    pub fn vector_count(&self) -> Result<u64, StoreError> {
        let r = self.read()?;
        Ok(r.open_table(VECTORS)?.len()?)
    }

    /// The stored vectors of `ids` in the current space (notes without one
    /// are left out).
    pub fn vectors_of(&self, ids: &[u64]) -> Result<Vec<(u64, Vec<f32>)>, StoreError> {
        let r = self.read()?;
        let space = r
            .open_table(META)?
            .get(KEY_VECTOR_MODEL)?
            .map(|g| String::from_utf8_lossy(g.value()).into_owned());
        let Some(space) = space else {
            return Ok(Vec::new());
        };
        let vt = r.open_table(VECTORS)?;
        let mut out = Vec::new();
        for &id in ids {
            if let Some(g) = vt.get(id)? {
                if let Some((s, v)) = decode_vector(g.value()) {
                    if s == space {
                        out.push((id, v));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Calls `f(note id, chat id, vector)` for every stored vector of
    /// embedding space `space`. Returns the notes whose stored vector is of
    /// another space, another dimension than `dim`, or unreadable: they need
    /// embedding again ([`Tx::requeue_embed`]).
    pub fn for_each_vector(
        &self,
        space: &str,
        dim: usize,
        mut f: impl FnMut(u64, i64, Vec<f32>),
    ) -> Result<Vec<u64>, StoreError> {
        let r = self.read()?;
        let vt = r.open_table(VECTORS)?;
        let notes = r.open_table(NOTES)?;
        let mut stale = Vec::new();
        for row in vt.iter()? {
            let (k, v) = row?;
            let id = k.value();
            let Some(chat) = notes.get(id)?.and_then(|g| chat_of(id, g.value())) else {
                continue;
            };
            match decode_vector(v.value()) {
                Some((s, v)) if s == space && v.len() == dim => f(id, chat, v),
                _ => stale.push(id),
            }
        }
        Ok(stale)
    }
}

impl Tx {
    /// Stores the embedding of note `id` in space `space`, computed for
    /// queue entry `seq`, if that entry is still current (the note was not
    /// edited or deleted meanwhile). Returns whether it was stored.
    pub fn put_vector(
        &mut self,
        id: u64,
        seq: u64,
        space: &str,
        v: &[f32],
    ) -> Result<bool, StoreError> {
        let mut q = self.txn.open_table(EMBED_QUEUE)?;
        if q.get(id)?.map(|g| g.value()) != Some(seq) {
            return Ok(false);
        }
        q.remove(id)?;
        drop(q);
        if self.txn.open_table(NOTES)?.get(id)?.is_none() {
            return Ok(false);
        }
        self.txn
            .open_table(VECTORS)?
            .insert(id, encode_vector(space, v).as_slice())?;
        Ok(true)
    }

    /// Stores the vector of a note that was embedded before it was stored
    /// (its acknowledgement looked for a repeat), in place of its queue
    /// entry, so the worker does not embed it again.
    pub fn put_vector_now(&mut self, id: u64, space: &str, v: &[f32]) -> Result<bool, StoreError> {
        match self.embed_seq(id)? {
            Some(seq) => self.put_vector(id, seq, space, v),
            None => Ok(false),
        }
    }

    /// Drops the stored vectors of `ids` and queues those notes for
    /// embedding again (vectors of another space, or damaged).
    pub fn requeue_embed(&mut self, ids: &[u64]) -> Result<(), StoreError> {
        for &id in ids {
            self.txn.open_table(VECTORS)?.remove(id)?;
            if self.txn.open_table(NOTES)?.get(id)?.is_some() {
                self.enqueue_embed(id)?;
            }
        }
        Ok(())
    }

    /// Switches the embedding space: drops all vectors and queues all notes.
    pub fn reset_vectors(&mut self, model_id: &str) -> Result<u64, StoreError> {
        let n = schema::queue_all_for_embedding(&self.txn)?;
        self.txn
            .open_table(META)?
            .insert(KEY_VECTOR_MODEL, model_id.as_bytes())?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_vector_names_its_space_and_damage_is_detected() {
        let v = [0.25f32, -1.0, 3.5];
        let b = encode_vector("minilm#date-dmy", &v);
        assert_eq!(decode_vector(&b), Some(("minilm#date-dmy", v.to_vec())));
        assert_eq!(decode_vector(&encode_vector("", &[])), Some(("", vec![])));
        // Every truncation, a bare f32 vector (the v5 layout) and a wrong
        // format byte are refused, never misread.
        for n in 0..b.len() {
            assert_eq!(decode_vector(&b[..n]), None, "truncated to {n}");
        }
        assert_eq!(decode_vector(&encode_f32s(&[0.1; 384])), None);
        let mut wrong = b.clone();
        wrong[0] = 2;
        assert_eq!(decode_vector(&wrong), None);
        let mut longer = b;
        longer.push(0);
        assert_eq!(decode_vector(&longer), None);
    }
}
