//! Who may talk to mnemo.
//!
//! Allowed: the console (whoever sits at the machine), users in
//! `telegram.allowed_user_ids`, and the owner recorded in the store. With an
//! empty allowlist and no owner, `serve` creates a one-time [`PairingCode`];
//! the first user who sends `/start <code>` becomes the owner. Everyone else
//! gets at most one refusal per day (the day is recorded in the store, so a
//! restart does not reset it) and nothing they send is stored.
//!
//! Groups (an [`Origin`](super::Origin) with `group`): with
//! `telegram.groups = "off"` every group event gets [`Outcome::Leave`]; with
//! `"allowlisted"` mnemo stays where an allowed user added it, serves only
//! allowed users, and ignores strangers silently (no refusal, no pairing:
//! a code typed in a group would be public).
//!
//! Strangers cost (almost) nothing: [`Core::unserved`] answers an event
//! that will not be served and needs no write (a refusal sent already
//! today, a stranger in a group, a press) from committed reads, before any
//! other work and without a commit; [`Core::keeps`] tells the Telegram
//! listener which updates need a durable inbox copy at all.

use super::{commands, now_ms, Body, Command, Core, Cx, Inbound, Outcome};
use crate::config::GroupPolicy;
use crate::i18n::{self, Line};
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
    /// A stranger's refusal: sent after every other reply waiting.
    Refuse(Vec<Line>),
    Silent,
    /// A group mnemo may not serve: leave it.
    Leave,
}

/// Today, in days since the epoch (UTC): the unit of refusals.
fn today() -> i64 {
    now_ms().div_euclid(86_400_000)
}

impl Core {
    /// When nobody may use the bot yet (empty allowlist, no owner), creates
    /// and returns a pairing code. `serve` logs it once.
    /// The code expires after `telegram.pairing_ttl_secs` or at the first
    /// successful pairing, whichever comes first.
    pub fn start_pairing(&self) -> Result<Option<PairingCode>, StoreError> {
        if !self.settings.allowed_user_ids.is_empty() || self.store.owner()?.is_some() {
            return Ok(None);
        }
        let code = PairingCode::generate();
        let until = std::time::Instant::now() + self.settings.pairing_ttl;
        *self.pairing.lock().unwrap_or_else(|p| p.into_inner()) = Some((code.clone(), until));
        Ok(Some(code))
    }

    /// The open pairing code, if any; an expired one is dropped here.
    fn pairing_code(slot: &mut Option<(PairingCode, std::time::Instant)>) -> Option<&PairingCode> {
        if slot
            .as_ref()
            .is_some_and(|(_, until)| std::time::Instant::now() >= *until)
        {
            tracing::info!("the pairing code expired; restart mnemo for a new one");
            *slot = None;
        }
        slot.as_ref().map(|(c, _)| c)
    }

    /// Whether `ev`'s sender is served, read without a write transaction
    /// (strangers and pairing are left to [`Core::check_access`]).
    pub(super) fn may_serve(&self, ev: &Inbound) -> Result<bool, StoreError> {
        if ev.origin.group && self.settings.groups == GroupPolicy::Off {
            return Ok(false);
        }
        Ok(ev.origin.trusted || self.serves_user(ev.user_id)?)
    }

    /// Whether an event from `user_id` (in a group chat or not) is served;
    /// `false` when the store cannot say. For the adapter's own decisions
    /// (whom to tell of a storage problem).
    pub fn serves_sender(&self, user_id: i64, group: bool) -> bool {
        if group && self.settings.groups == GroupPolicy::Off {
            return false;
        }
        self.serves_user(user_id).unwrap_or(false)
    }

    /// Whether an update from `user_id` must be kept durably (the inbox)
    /// before it is confirmed: it will be served, or it may pair (`text`
    /// starts with `/start` while a pairing code is open). A stranger's
    /// update needs no copy — nothing of it is stored, and handling it
    /// again after a crash changes nothing. When the store cannot say:
    /// kept.
    pub fn keeps(&self, user_id: i64, group: bool, text: Option<&str>) -> bool {
        if group && self.settings.groups == GroupPolicy::Off {
            return false;
        }
        match self.serves_user(user_id) {
            Ok(true) | Err(_) => true,
            Ok(false) => !group && self.pairing_open() && text.is_some_and(is_start),
        }
    }

    /// Whether any group chat is served (`telegram.groups` is not off).
    pub fn serves_groups(&self) -> bool {
        self.settings.groups != GroupPolicy::Off
    }

    fn pairing_open(&self) -> bool {
        let mut slot = self.pairing.lock().unwrap_or_else(|p| p.into_inner());
        Core::pairing_code(&mut slot).is_some()
    }

    /// The outcomes of an event that will not be served and needs no write,
    /// decided from committed reads before anything else is done: a group
    /// mnemo may not serve (leave it), a stranger in an allowed group
    /// (nothing; an attempt to add mnemo: leave), a stranger's press (its
    /// answer), a stranger already refused today (nothing). `None`: the
    /// event goes the whole way (served, pairing, or a refusal to record).
    pub(super) fn unserved(&self, ev: &Inbound) -> Result<Option<Vec<Outcome>>, StoreError> {
        if ev.origin.trusted {
            return Ok(None);
        }
        let leave = || {
            vec![Outcome::Leave {
                chat_id: ev.chat_id,
            }]
        };
        if ev.origin.group && self.settings.groups == GroupPolicy::Off {
            return Ok(Some(leave()));
        }
        if self.serves_user(ev.user_id)? {
            return Ok(None);
        }
        if let Body::Press(_) = ev.body {
            let lang = i18n::negotiate(ev.user_lang.as_deref(), &self.settings.default_lang);
            return Ok(Some(vec![Outcome::Answer(super::Answer {
                lang,
                line: Line::new("press-not-allowed"),
                chosen: false,
            })]));
        }
        if ev.origin.group {
            return Ok(Some(match ev.body {
                Body::Added => leave(),
                _ => Vec::new(),
            }));
        }
        let pairing = self.pairing_open() && matches!(&ev.body, Body::Text(t) if is_start(t));
        if !pairing && self.store.refused_on(ev.user_id)? == Some(today()) {
            return Ok(Some(Vec::new()));
        }
        Ok(None)
    }

    /// Whether `user` is allowlisted or the owner (read committed).
    pub(super) fn serves_user(&self, user: i64) -> Result<bool, StoreError> {
        Ok(self.settings.allowed_user_ids.contains(&user) || self.store.owner()? == Some(user))
    }

    pub(super) fn check_access(&self, tx: &mut Tx, cx: &Cx) -> Result<Verdict, StoreError> {
        let ev = cx.ev;
        if ev.origin.group && self.settings.groups == GroupPolicy::Off {
            return Ok(Verdict::Leave);
        }
        if ev.origin.trusted || self.settings.allowed_user_ids.contains(&ev.user_id) {
            return Ok(Verdict::Allowed);
        }
        let owner = tx.owner()?;
        if owner == Some(ev.user_id) {
            return Ok(Verdict::Allowed);
        }
        if ev.origin.group {
            // No refusal in public, and no pairing: the code would be seen.
            return Ok(Verdict::Silent);
        }
        if owner.is_none() && self.try_pair(tx, cx)? {
            return Ok(Verdict::Reply(vec![Line::new("start-paired")]));
        }
        if tx.note_refusal(ev.user_id, today())? {
            tracing::info!(user_id = ev.user_id, "refused a user who is not allowed");
            Ok(Verdict::Refuse(vec![
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
        let Some(code) = Core::pairing_code(&mut slot) else {
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

/// Whether `text` is a `/start` command (perhaps a pairing attempt).
fn is_start(text: &str) -> bool {
    matches!(commands::parse(text), Some(Ok((Command::Start, _))))
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
