//! What LLM summaries cost: one record per answered call (tokens, the
//! estimate made before sending, the price when the model has one), kept in
//! time order so that a day's or a month's spend is one range read.
//!
//! Days and months are UTC: the daily limit resets at 00:00 UTC whatever the
//! chat's time zone, which keeps the limit one number for all chats.

use serde::{Deserialize, Serialize};

use super::schema::{get_u64, put_u64, KEY_NEXT_LLM_CALL, LLM_CALLS};
use super::{Store, StoreError, Tx};

const DAY_MS: i64 = 86_400_000;

/// One LLM call that came back with an answer (a failed call that never
/// answered costs nothing and is only logged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    /// Unix ms.
    pub at: i64,
    pub chat_id: i64,
    /// "openai" or "anthropic".
    pub provider: String,
    pub model: String,
    /// "draft", "critique", "refine" or "repair".
    pub pass: String,
    /// As reported by the provider (`usage`).
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Counted here with tiktoken before sending.
    pub estimated_input: u64,
    /// None when the model has no price in the config.
    pub cost_usd: Option<f64>,
}

/// The calls of a period added up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// None when some call had no known price (the total is unknown).
    pub cost_usd: Option<f64>,
    /// The cost of the calls whose price is known.
    pub priced_cost_usd: f64,
    /// Calls of a model without a price.
    pub unpriced_calls: u64,
}

impl Usage {
    fn add(&mut self, c: &LlmCall) {
        self.calls += 1;
        self.input_tokens += c.input_tokens;
        self.output_tokens += c.output_tokens;
        match c.cost_usd {
            Some(usd) => self.priced_cost_usd += usd,
            None => self.unpriced_calls += 1,
        }
        self.cost_usd = (self.unpriced_calls == 0).then_some(self.priced_cost_usd);
    }

    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// Today's and this month's spend (UTC).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub today: Usage,
    pub month: Usage,
}

/// Start of the UTC day of `ms`.
pub fn utc_day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// Start of the UTC calendar month of `ms`.
pub fn utc_month_start(ms: i64) -> i64 {
    use chrono::{Datelike, TimeZone, Utc};
    let Some(t) = Utc.timestamp_millis_opt(ms).single() else {
        return utc_day_start(ms);
    };
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .map_or_else(|| utc_day_start(ms), |m| m.timestamp_millis())
}

impl Store {
    /// Today's and this month's LLM spend as of `now_ms` (UTC day and month).
    pub fn llm_spend(&self, now_ms: i64) -> Result<Spend, StoreError> {
        let day = utc_day_start(now_ms);
        let month = utc_month_start(now_ms);
        let r = self.read()?;
        let t = r.open_table(LLM_CALLS)?;
        let mut spend = Spend::default();
        for row in t.range((month.min(day), 0)..)? {
            let (k, v) = row?;
            let (at, _) = k.value();
            let call: LlmCall = match serde_json::from_slice(v.value()) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(at, error = %e, "unreadable llm call record");
                    continue;
                }
            };
            if at >= month {
                spend.month.add(&call);
            }
            if at >= day {
                spend.today.add(&call);
            }
        }
        Ok(spend)
    }

    /// Every recorded call from `from_ms` on, oldest first.
    pub fn llm_calls(&self, from_ms: i64) -> Result<Vec<LlmCall>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(LLM_CALLS)?;
        let mut out = Vec::new();
        for row in t.range((from_ms, 0)..)? {
            let (_, v) = row?;
            if let Ok(c) = serde_json::from_slice(v.value()) {
                out.push(c);
            }
        }
        Ok(out)
    }
}

impl Tx {
    /// Appends one call to the record.
    pub fn record_llm_call(&mut self, call: &LlmCall) -> Result<(), StoreError> {
        let seq = get_u64(&self.txn, KEY_NEXT_LLM_CALL)?.unwrap_or(1);
        put_u64(&self.txn, KEY_NEXT_LLM_CALL, seq + 1)?;
        let bytes = serde_json::to_vec(call).expect("llm call records serialise");
        self.txn
            .open_table(LLM_CALLS)?
            .insert((call.at, seq), bytes.as_slice())?;
        Ok(())
    }

    /// Forgets the calls made before `before_ms`; returns how many went.
    pub fn prune_llm_calls(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        self.txn.open_table(LLM_CALLS)?.retain(|(at, _), _| {
            let keep = at >= before_ms;
            n += u64::from(!keep);
            keep
        })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(at: i64, input: u64, cost: Option<f64>) -> LlmCall {
        LlmCall {
            at,
            chat_id: 1,
            provider: "openai".into(),
            model: "m".into(),
            pass: "draft".into(),
            input_tokens: input,
            output_tokens: 10,
            estimated_input: input,
            cost_usd: cost,
        }
    }

    #[test]
    fn spend_adds_up_by_utc_day_and_month() {
        // 2026-05-20 12:00 UTC.
        let now = 1_779_278_400_000;
        assert_eq!(utc_month_start(now), 1_777_593_600_000); // 2026-05-01
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.llm_spend(now).unwrap(), Spend::default());
        store
            .write(|tx| {
                tx.record_llm_call(&call(1_777_593_600_000 - 1, 1000, Some(9.0)))?; // April
                tx.record_llm_call(&call(1_777_593_600_000 + 5, 100, Some(0.5)))?; // May 1st
                tx.record_llm_call(&call(now - 1000, 200, Some(0.25)))?;
                tx.record_llm_call(&call(now - 1000, 300, Some(0.25)))?; // same ms
                Ok(())
            })
            .unwrap();
        let s = store.llm_spend(now).unwrap();
        assert_eq!((s.today.calls, s.today.input_tokens), (2, 500));
        assert_eq!(s.today.cost_usd, Some(0.5));
        assert_eq!((s.month.calls, s.month.cost_usd), (3, Some(1.0)));
        // One call without a price makes the day's cost unknown.
        store
            .write(|tx| tx.record_llm_call(&call(now, 50, None)))
            .unwrap();
        let s = store.llm_spend(now).unwrap();
        assert_eq!(s.today.cost_usd, None);
        assert_eq!(s.today.priced_cost_usd, 0.5);
        assert_eq!((s.today.unpriced_calls, s.today.tokens()), (1, 580));
        assert_eq!(
            store.write(|tx| tx.prune_llm_calls(now - DAY_MS)).unwrap(),
            2
        );
        assert_eq!(store.llm_calls(0).unwrap().len(), 3);
    }
}
