//! Who may talk to mnemo.
//!
//! Allowed: the console (whoever sits at the machine), users in
//! `telegram.allowed_user_ids`, and the owner recorded in the store. With an
//! empty allowlist and no owner, `serve` creates a one-time [`PairingCode`];
//! the first user who sends `/start <code>` becomes the owner. Everyone else
//! gets at most one refusal per day (the day is recorded in the store, so a
//! restart does not reset it) and nothing they send is stored.

use super::{commands, now_ms, Command, Core, Cx};
use crate::i18n::Line;
use crate::store::{StoreError, Tx};

/// Alphabet without look-alikes (no 0/O, 1/I/L).
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_LEN: usize = 10;

/// A secret one-time code. `Debug` does not show it.
#[derive(Clone)]
pub struct PairingCode(String);

impl PairingCode {
    pub fn generate() -> PairingCode {
        let mut raw = [0u8; CODE_LEN];
        getrandom::fill(&mut raw).expect("the OS random source works");
        // 256 % 31 != 0 gives a slight bias; irrelevant for a 50-bit one-time code.
        PairingCode(
            raw.iter()
                .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison, case-insensitive.
    fn matches(&self, candidate: &str) -> bool {
        let a = self.0.as_bytes();
        let b = candidate.trim().to_ascii_uppercase();
        let b = b.as_bytes();
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairingCode(***)")
    }
}

pub(super) enum Verdict {
    Allowed,
    Reply(Vec<Line>),
    Silent,
}

impl Core {
    /// When nobody may use the bot yet (empty allowlist, no owner), creates
    /// and returns a pairing code. `serve` logs it once.
    pub fn start_pairing(&self) -> Result<Option<PairingCode>, StoreError> {
        if !self.settings.allowed_user_ids.is_empty() || self.store.owner()?.is_some() {
            return Ok(None);
        }
        let code = PairingCode::generate();
        *self.pairing.lock().unwrap_or_else(|p| p.into_inner()) = Some(code.clone());
        Ok(Some(code))
    }

    /// Whether `ev`'s sender is served, read without a write transaction
    /// (strangers and pairing are left to [`Core::check_access`]).
    pub(super) fn may_serve(&self, ev: &super::Inbound) -> Result<bool, StoreError> {
        Ok(ev.origin.trusted || self.serves_user(ev.user_id)?)
    }

    /// Whether `user` is allowlisted or the owner (read committed).
    pub(super) fn serves_user(&self, user: i64) -> Result<bool, StoreError> {
        Ok(self.settings.allowed_user_ids.contains(&user) || self.store.owner()? == Some(user))
    }

    pub(super) fn check_access(&self, tx: &mut Tx, cx: &Cx) -> Result<Verdict, StoreError> {
        let ev = cx.ev;
        if ev.origin.trusted || self.settings.allowed_user_ids.contains(&ev.user_id) {
            return Ok(Verdict::Allowed);
        }
        let owner = tx.owner()?;
        if owner == Some(ev.user_id) {
            return Ok(Verdict::Allowed);
        }
        if owner.is_none() && self.try_pair(tx, cx)? {
            return Ok(Verdict::Reply(vec![Line::new("start-paired")]));
        }
        let day = now_ms().div_euclid(86_400_000);
        if tx.note_refusal(ev.user_id, day)? {
            tracing::info!(user_id = ev.user_id, "refused a user who is not allowed");
            Ok(Verdict::Reply(vec![
                Line::new("access-denied").text("user", ev.user_id.to_string())
            ]))
        } else {
            Ok(Verdict::Silent)
        }
    }

    fn try_pair(&self, tx: &mut Tx, cx: &Cx) -> Result<bool, StoreError> {
        let crate::core::Body::Text(text) = &cx.ev.body else {
            return Ok(false);
        };
        let Some(Ok((Command::Start, arg))) = commands::parse(text) else {
            return Ok(false);
        };
        if arg.is_empty() {
            return Ok(false);
        }
        let mut slot = self.pairing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(code) = slot.as_ref() else {
            return Ok(false);
        };
        if !code.matches(arg) {
            return Ok(false);
        }
        tx.set_owner(cx.ev.user_id)?;
        // One-time: even if this transaction failed, a new code would be needed.
        *slot = None;
        tracing::info!(
            user_id = cx.ev.user_id,
            "paired: this user is now the owner"
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_only_themselves() {
        let c = PairingCode::generate();
        assert_eq!(c.as_str().len(), CODE_LEN);
        assert!(c.matches(c.as_str()));
        assert!(c.matches(&format!(" {} ", c.as_str().to_lowercase())));
        assert!(!c.matches(&c.as_str()[1..]));
        assert!(!c.matches("AAAAAAAAAA") || c.as_str() == "AAAAAAAAAA");
        assert_eq!(format!("{c:?}"), "PairingCode(***)");
    }
}
