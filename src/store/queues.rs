//! Work queues and their markers: the Telegram inbox and processed update
//! ids, the outbox of replies not yet sent, and the embedding queue.

use redb::{ReadableTable, ReadableTableMetadata};

use super::schema::*;
use super::{read_note, Note, Store, StoreError, Tx};

impl Store {
    /// Whether an update was processed (read outside a write, so a
    /// re-delivered update costs no work before the write phase drops it).
    pub fn is_processed(&self, update_id: u64) -> Result<bool, StoreError> {
        let r = self.read()?;
        Ok(r.open_table(PROCESSED)?.get(update_id)?.is_some())
    }

    /// Up to `limit` queued replies, oldest first.
    pub fn outbox(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.dump(OUTBOX, limit)
    }

    /// Up to `limit` queued replies with a sequence number above `after`
    /// (all, from the oldest, for `None`), oldest first: one range read,
    /// whatever lies before `after`.
    pub fn outbox_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let start = match after {
            None => 0,
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(a) => a + 1,
        };
        let r = self.read()?;
        let t = r.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for row in t.range(start..)?.take(limit) {
            let (k, v) = row?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Updates received from Telegram but not yet processed, oldest first.
    pub fn inbox(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.dump(INBOX, limit)
    }

    fn dump(
        &self,
        table: redb::TableDefinition<u64, &[u8]>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(table)?;
        let mut out = Vec::new();
        for row in t.iter()?.take(limit) {
            let (k, v) = row?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let r = self.read()?;
        Ok(r.open_table(OUTBOX)?.len()?)
    }

    pub fn last_update_id(&self) -> Result<Option<u64>, StoreError> {
        self.meta_u64(KEY_LAST_UPDATE)
    }

    /// Up to `limit` queued notes: (note id, queue sequence, note).
    pub fn embed_queue(&self, limit: usize) -> Result<Vec<(u64, u64, Note)>, StoreError> {
        let r = self.read()?;
        let q = r.open_table(EMBED_QUEUE)?;
        let notes = r.open_table(NOTES)?;
        let mut out = Vec::new();
        for row in q.iter()? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row?;
            let id = k.value();
            if let Some(n) = notes.get(id)?.and_then(|g| read_note(id, g.value())) {
                out.push((id, v.value(), n));
            }
        }
        Ok(out)
    }

    pub fn embed_queue_len(&self) -> Result<u64, StoreError> {
        let r = self.read()?;
        Ok(r.open_table(EMBED_QUEUE)?.len()?)
    }
}

impl Tx {
    /// Queues note `id` for (re-)embedding.
    /// The current queue entry of note `id`, if it waits for embedding.
    pub fn embed_seq(&self, id: u64) -> Result<Option<u64>, StoreError> {
        Ok(self
            .txn
            .open_table(EMBED_QUEUE)?
            .get(id)?
            .map(|g| g.value()))
    }

    pub fn enqueue_embed(&mut self, id: u64) -> Result<(), StoreError> {
        let seq = self.next_seq(KEY_EMBED_SEQ)?;
        self.txn.open_table(EMBED_QUEUE)?.insert(id, seq)?;
        Ok(())
    }

    /// Drops the queue entry of a note that cannot be embedded (so it does not
    /// block the queue); the note stays searchable lexically.
    pub fn skip_embed(&mut self, id: u64, seq: u64) -> Result<(), StoreError> {
        let mut q = self.txn.open_table(EMBED_QUEUE)?;
        if q.get(id)?.map(|g| g.value()) == Some(seq) {
            q.remove(id)?;
        }
        Ok(())
    }

    pub fn is_processed(&self, update_id: u64) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(PROCESSED)?.get(update_id)?.is_some())
    }

    /// Marks a Telegram update as processed and drops it from the inbox.
    pub fn mark_processed(&mut self, update_id: u64, at: i64) -> Result<(), StoreError> {
        self.txn.open_table(PROCESSED)?.insert(update_id, at)?;
        self.txn.open_table(INBOX)?.remove(update_id)?;
        Ok(())
    }

    /// Forgets processed markers older than `before` (unix ms). Telegram keeps
    /// unconfirmed updates for 24 hours, so a week of markers is plenty.
    pub fn prune_processed(&mut self, before: i64) -> Result<u64, StoreError> {
        self.prune_before(PROCESSED, before)
    }

    /// Records a received update before it is handed to the handlers.
    /// Returns false when it was processed already (a re-delivery).
    pub fn inbox_put(&mut self, update_id: u64, raw: &[u8]) -> Result<bool, StoreError> {
        if self.is_processed(update_id)? {
            return Ok(false);
        }
        self.txn.open_table(INBOX)?.insert(update_id, raw)?;
        let last = get_u64(&self.txn, KEY_LAST_UPDATE)?.unwrap_or(0);
        if update_id >= last {
            put_u64(&self.txn, KEY_LAST_UPDATE, update_id)?;
        }
        Ok(true)
    }

    pub fn push_outbox(&mut self, item: &[u8]) -> Result<u64, StoreError> {
        let seq = self.next_seq(KEY_NEXT_OUTBOX)?;
        self.txn.open_table(OUTBOX)?.insert(seq, item)?;
        Ok(seq)
    }

    pub fn replace_outbox(&mut self, seq: u64, item: &[u8]) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(OUTBOX)?;
        if t.get(seq)?.is_some() {
            t.insert(seq, item)?;
        }
        Ok(())
    }

    pub fn remove_outbox(&mut self, seq: u64) -> Result<(), StoreError> {
        self.txn.open_table(OUTBOX)?.remove(seq)?;
        Ok(())
    }
}
