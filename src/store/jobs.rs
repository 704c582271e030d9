//! What the background jobs remember: one record per job name (its last run
//! and how it ended), and the upkeep writes only jobs do.
//!
//! The record is written after every run, in its own commit, so
//! `mnemo jobs` can say when each job last ran even across restarts. A job
//! whose record is missing has never run.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::schema::{JOB_RUNS, REFUSED};
use super::{Store, StoreError, Tx};

/// The last run of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    /// When the run started, unix ms.
    pub at: i64,
    /// How long it took, ms.
    pub took_ms: u64,
    /// Whether it ended without error.
    pub ok: bool,
    /// What it did ("pruned 12") or why it failed.
    pub detail: String,
    /// Runs and failures so far.
    pub runs: u64,
    pub failures: u64,
}

impl Store {
    /// Every job's last run, by name.
    pub fn job_runs(&self) -> Result<Vec<(String, JobRun)>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(JOB_RUNS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            // A damaged record only loses that job's history.
            match serde_json::from_slice::<JobRun>(v.value()) {
                Ok(run) => out.push((k.value().to_owned(), run)),
                Err(e) => tracing::warn!(job = k.value(), error = %e, "unreadable job record"),
            }
        }
        Ok(out)
    }
}

impl Tx {
    /// Records a run of `name` (counting it onto the previous record).
    pub fn record_job_run(
        &mut self,
        name: &str,
        at: i64,
        took_ms: u64,
        result: Result<&str, &str>,
    ) -> Result<JobRun, StoreError> {
        let mut t = self.txn.open_table(JOB_RUNS)?;
        let prev: Option<JobRun> = t
            .get(name)?
            .and_then(|g| serde_json::from_slice(g.value()).ok());
        let (runs, failures) = prev.map_or((0, 0), |p| (p.runs, p.failures));
        let run = JobRun {
            at,
            took_ms,
            ok: result.is_ok(),
            detail: match result {
                Ok(d) | Err(d) => d.to_owned(),
            },
            runs: runs + 1,
            failures: failures + u64::from(result.is_err()),
        };
        let bytes = serde_json::to_vec(&run).expect("job records serialise");
        t.insert(name, bytes.as_slice())?;
        Ok(run)
    }

    /// Forgets the refusal days of strangers refused before `day` (days since
    /// the epoch): a stranger who writes again later is told once more.
    pub fn prune_refusals(&mut self, before_day: i64) -> Result<u64, StoreError> {
        self.prune_before(REFUSED, before_day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_count_runs_and_failures_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert!(store.job_runs().unwrap().is_empty());
            store
                .write(|tx| tx.record_job_run("prune", 1_000, 3, Ok("pruned 2")))
                .unwrap();
            store
                .write(|tx| tx.record_job_run("prune", 2_000, 4, Err("disk full")))
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let runs = store.job_runs().unwrap();
        assert_eq!(runs.len(), 1);
        let (name, run) = &runs[0];
        assert_eq!(name, "prune");
        assert_eq!(
            run,
            &JobRun {
                at: 2_000,
                took_ms: 4,
                ok: false,
                detail: "disk full".into(),
                runs: 2,
                failures: 1
            }
        );
    }

    #[test]
    fn refusals_older_than_the_horizon_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                tx.note_refusal(1, 10)?;
                tx.note_refusal(2, 20)?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.write(|tx| tx.prune_refusals(15)).unwrap(), 1);
        // User 1 was forgotten: refused (and told) again on day 20.
        assert!(store.write(|tx| tx.note_refusal(1, 20)).unwrap());
        assert!(!store.write(|tx| tx.note_refusal(2, 20)).unwrap());
    }
}
