//! What the health monitor remembers: each check's alert state and the log
//! of alert transitions. The records are the monitor's own JSON (the store
//! does not know their shape); they are written in one commit per health
//! pass, together with the outbox entry of the alert they caused, so a crash
//! never sends an alert without recording it, or records one never sent.

use redb::ReadableTable;

use super::schema::{
    get_u64, put_u64, HEALTH_CHECKS, HEALTH_LOG, KEY_HEALTH_PROBE, KEY_NEXT_HEALTH_LOG,
    KEY_ROOM_PROBE, META,
};
use super::{Store, StoreError, Tx};

/// Transitions kept in the alert log.
pub const HEALTH_LOG_KEEP: usize = 500;

impl Store {
    /// Every check's record, by check name.
    pub fn health_records(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(HEALTH_CHECKS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// The newest `n` log entries, newest first.
    pub fn health_log(&self, n: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(HEALTH_LOG)?;
        let mut out = Vec::new();
        for row in t.iter()?.rev().take(n) {
            out.push(row?.1.value().to_vec());
        }
        Ok(out)
    }
}

impl Tx {
    pub fn health_record(&mut self, check: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.txn.open_table(HEALTH_CHECKS)?;
        let v = t.get(check)?.map(|g| g.value().to_vec());
        Ok(v)
    }

    pub fn put_health_record(&mut self, check: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.txn.open_table(HEALTH_CHECKS)?.insert(check, bytes)?;
        Ok(())
    }

    /// Appends to the alert log, dropping the oldest beyond
    /// [`HEALTH_LOG_KEEP`].
    pub fn log_health(&mut self, bytes: &[u8]) -> Result<u64, StoreError> {
        let seq = get_u64(&self.txn, KEY_NEXT_HEALTH_LOG)?.unwrap_or(1);
        put_u64(&self.txn, KEY_NEXT_HEALTH_LOG, seq + 1)?;
        let mut t = self.txn.open_table(HEALTH_LOG)?;
        t.insert(seq, bytes)?;
        let cut = seq.saturating_sub(HEALTH_LOG_KEEP as u64);
        if cut > 0 {
            t.retain_in(..=cut, |_, _| false)?;
        }
        Ok(seq)
    }

    /// A commit that proves the database takes writes (the health check's
    /// probe): the time of the last one.
    pub fn health_probe(&mut self, now: i64) -> Result<(), StoreError> {
        put_u64(&self.txn, KEY_HEALTH_PROBE, now as u64)
    }

    /// Writes (`Some`) or removes (`None`) the scratch value a recovering
    /// store commits to prove it has room (`Store::try_recover`).
    pub fn room_probe(&mut self, bytes: Option<&[u8]>) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(META)?;
        match bytes {
            Some(b) => {
                t.insert(KEY_ROOM_PROBE, b)?;
            }
            None => {
                t.remove(KEY_ROOM_PROBE)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_the_log_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                tx.put_health_record("disk", br#"{"a":1}"#)?;
                tx.health_probe(5)
            })
            .unwrap();
        assert_eq!(
            store.health_records().unwrap(),
            vec![("disk".to_owned(), br#"{"a":1}"#.to_vec())]
        );
        for i in 0..(HEALTH_LOG_KEEP + 7) {
            store
                .write(|tx| tx.log_health(i.to_string().as_bytes()).map(|_| ()))
                .unwrap();
        }
        let log = store.health_log(usize::MAX).unwrap();
        assert_eq!(log.len(), HEALTH_LOG_KEEP);
        assert_eq!(log[0], (HEALTH_LOG_KEEP + 6).to_string().into_bytes());
    }
}
