//! Signed callback data for inline buttons.
//!
//! A Telegram inline button carries up to 64 bytes of `callback_data` that
//! come back verbatim when someone presses it. mnemo puts a small signed
//! [`Payload`] there — *what* to do ([`Action`]) to *which* memory or item —
//! so that a press can be acted on without server-side state per button, and
//! so that nobody can make mnemo act on a press it did not issue.
//!
//! This module is channel-free (no teloxide) and pure apart from the key
//! file handling in [`Keyring::load_or_create`] and [`Keyring::rotate`].
//!
//! # Threat model
//!
//! Callback data is **attacker-controlled input**. Any Telegram client can
//! send a callback query with arbitrary data for a message it can see, and a
//! user can copy buttons from one chat to another (forwarding keeps inline
//! keyboards). We want:
//!
//! - **No forgery or alteration.** The bytes are authenticated with
//!   HMAC-SHA256 under a key only mnemo knows ([`Keyring`]). Changing any bit
//!   — action, target, time, nonce, tag — yields [`Reject::BadTag`] (or
//!   [`Reject::Malformed`] if it no longer decodes at all).
//! - **No transplanting.** The tag also covers the chat id and user id the
//!   button was issued to. They are *not* transmitted (Telegram tells us who
//!   pressed and where), so the same bytes pressed by another user or in
//!   another chat fail as [`Reject::BadTag`].
//! - **Bounded lifetime.** The issue time is inside the signed bytes;
//!   [`Keyring::verify`] rejects presses older than `max_age_secs`
//!   ([`Reject::Expired`]) and issue times more than
//!   [`MAX_CLOCK_SKEW_SECS`] ahead of the clock ([`Reject::FromTheFuture`]).
//! - **No replay of single-use actions.** Each payload carries a random
//!   64-bit [`Payload::nonce`]. This module does *not* remember nonces — that
//!   needs the store, in the same transaction as the action — so the caller
//!   must record the nonce of every accepted [`Action::single_use`] press and
//!   refuse a second one. Votes are idempotent and need no replay tracking.
//! - **Constant-time verification.** The tag is checked with `hmac`'s own
//!   constant-time comparison (`Mac::verify_truncated_left`), never with `==`.
//!
//! Out of scope: confidentiality (the payload is signed, not encrypted — a
//! user can decode their own button's ids, which they could see anyway), and
//! a stolen key (anyone with the key can sign anything; see [`Keyring`] for
//! how the key is stored and rotated).
//!
//! # Wire layout (version 1)
//!
//! The callback data is the base64url encoding, **without padding**, of:
//!
//! | bytes  | field      | encoding                                               |
//! |--------|------------|--------------------------------------------------------|
//! | 1      | version    | `1`                                                    |
//! | 1      | action     | [`Action`] discriminant (`1..=10`)                     |
//! | 1..=10 | target     | `u64`, unsigned LEB128, minimal (no trailing `0x80`s)  |
//! | 4      | issued_at  | `u32` little-endian, **unix seconds** (valid to 2106)  |
//! | 8      | nonce      | `u64` little-endian, random ([`Payload::new`])         |
//! | 12     | tag        | first 12 bytes (96 bits) of the HMAC-SHA256 below      |
//!
//! ```text
//! tag = HMAC-SHA256(key, body ‖ chat_id as i64 LE ‖ user_id as i64 LE)[..12]
//! body = version ‖ action ‖ target ‖ issued_at ‖ nonce
//! ```
//!
//! The body is 15..=24 bytes, so the raw string is 27..=36 bytes and the
//! encoded string **36..=48 characters** — always inside Telegram's 1..=64
//! byte limit, with room for a future version. Because the chat and user ids
//! are a fixed-length suffix, the MAC input is unambiguous.
//!
//! Every version keeps one invariant: **the tag is the last [`TAG_LEN`]
//! bytes.** That lets [`Keyring::verify`] authenticate *before* it parses
//! anything, so it never interprets unauthenticated bytes; an unknown version
//! or action is reported as such only when its tag is valid (that is, mnemo
//! itself issued it — e.g. a newer build before a downgrade).
//!
//! Decoding is strict, so every accepted payload has exactly one encoding:
//! padding, non-alphabet characters and non-zero trailing bits are
//! [`Reject::Malformed`], and so is a non-minimal varint.
//!
//! Why 96 bits of tag: forging is an *online* attack — every guess is a
//! callback query through Telegram, rate-limited and visible in logs — so a
//! 2⁻⁹⁶ chance per guess is far beyond reach, and the 4 bytes saved over a
//! 128-bit tag keep the data short.
//!
//! # Usage
//!
//! ```
//! use mnemo::buttons::{Action, Keyring, Payload, Reject, DEFAULT_MAX_AGE_SECS};
//!
//! let keys = Keyring::new([7; 32]);
//! let now = 1_767_225_600;
//! let press = Payload::new(Action::Helpful, 42, now).unwrap();
//! let data = keys.sign(&press, -100_123, 555);
//! assert!(data.len() <= 64);
//!
//! let got = keys.verify(&data, -100_123, 555, now + 60, DEFAULT_MAX_AGE_SECS).unwrap();
//! assert_eq!(got, press);
//! // Another user pressing the same button:
//! assert_eq!(keys.verify(&data, -100_123, 666, now, DEFAULT_MAX_AGE_SECS), Err(Reject::BadTag));
//! ```

mod keyring;

pub use keyring::{
    derive_secret, secret_kind, EntropyError, KeyError, Keyring, SecretKind, KEY_FILE,
};

/// The layout version written by [`Keyring::sign`].
pub const VERSION: u8 = 1;
/// Length of the truncated HMAC-SHA256 tag in bytes (96 bits).
pub const TAG_LEN: usize = 12;
/// Telegram's limit for `callback_data`, in bytes.
pub const MAX_ENCODED_LEN: usize = 64;
/// How far an issue time may lie in the future before it is rejected
/// ([`Reject::FromTheFuture`]): tolerates a clock stepped back a little.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;
/// The default button lifetime the issue asks for: 30 days.
pub const DEFAULT_MAX_AGE_SECS: i64 = 30 * 24 * 60 * 60;

/// Largest LEB128 encoding of a `u64`.
const MAX_VARINT_LEN: usize = 10;
/// version + action + target + issued_at + nonce, at most.
const MAX_BODY_LEN: usize = 1 + 1 + MAX_VARINT_LEN + 4 + 8;
/// Raw (decoded) bytes, at most: 36.
const MAX_RAW_LEN: usize = MAX_BODY_LEN + TAG_LEN;
/// Base64 of 48 raw bytes is exactly 64 characters; longer input is never
/// decoded.
const DECODE_BUF_LEN: usize = MAX_ENCODED_LEN / 4 * 3;
// Every version-1 string fits Telegram's limit (36 raw bytes → 48 chars).
const _: () = assert!(MAX_RAW_LEN <= DECODE_BUF_LEN);

/// What a button does. The discriminant is the action byte on the wire:
/// never renumber, only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Action {
    /// 👍 under a recall hit.
    Helpful = 1,
    /// 👎 under a recall hit.
    NotHelpful = 2,
    /// ⌛ under a recall hit.
    Outdated = 3,
    /// ↩ under a saved-note acknowledgement.
    Undo = 4,
    /// ✅ under a listed to-do.
    Done = 5,
    /// 🔁 under a voice transcript.
    Retranscribe = 6,
    /// "more" under a recall answer: the hits below the relevance floor
    /// (target: the recall question, an `Ask` id).
    More = 7,
    /// 🔕 under a health alert: no repeats for an hour (target: the check).
    HealthSnooze = 8,
    /// ✅ under a health alert: no repeats until it recovers.
    HealthAck = 9,
    /// 🔍 under a health alert: the check's last readings.
    HealthDetails = 10,
}

impl Action {
    /// Every action, in wire order.
    pub const ALL: [Action; 10] = [
        Action::Helpful,
        Action::NotHelpful,
        Action::Outdated,
        Action::Undo,
        Action::Done,
        Action::Retranscribe,
        Action::More,
        Action::HealthSnooze,
        Action::HealthAck,
        Action::HealthDetails,
    ];

    /// Whether a press may take effect at most once. The caller records the
    /// [`Payload::nonce`] of such presses (in the same store transaction as
    /// the action) and rejects a second press. Votes are not single-use: a
    /// repeated vote replaces the earlier one, so replaying it changes
    /// nothing.
    pub fn single_use(self) -> bool {
        matches!(self, Action::Undo | Action::Done | Action::Retranscribe)
    }

    /// The wire byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The action for a wire byte, if it is known.
    pub fn from_u8(byte: u8) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_u8() == byte)
    }
}

/// The signed content of one button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Payload {
    pub action: Action,
    /// Memory id or item id, depending on the action.
    pub target: u64,
    /// Unix seconds. Transmitted as `u32`: values outside
    /// `0..=u32::MAX` (before 1970 or after 2106) are clamped when signing,
    /// so they verify as [`Reject::Expired`] or [`Reject::FromTheFuture`]
    /// rather than as some other time.
    pub issued_at: i64,
    /// 64 random bits, unique per issued button. Record it for
    /// [`Action::single_use`] presses to refuse replays.
    pub nonce: u64,
}

impl Payload {
    /// A payload with a fresh random nonce from the operating system.
    pub fn new(action: Action, target: u64, issued_at: i64) -> Result<Payload, EntropyError> {
        let nonce = getrandom::u64().map_err(EntropyError::from)?;
        Ok(Payload {
            action,
            target,
            issued_at,
            nonce,
        })
    }

    /// Shorthand for `self.action.single_use()`.
    pub fn single_use(&self) -> bool {
        self.action.single_use()
    }
}

/// Why a press was refused. Every variant means "do nothing"; the
/// distinction is for the localized answer and for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reject {
    /// Not base64url, wrong length, or (with a valid tag) not a valid body.
    #[error("malformed callback data")]
    Malformed,
    /// Forged or altered, signed for another chat or user, or signed with a
    /// key that is no longer accepted.
    #[error("callback data has a bad signature")]
    BadTag,
    /// Validly signed, but a layout version this build does not know.
    #[error("callback data has an unknown version")]
    UnknownVersion,
    /// Validly signed, but an action byte this build does not know.
    #[error("callback data names an unknown action")]
    UnknownAction,
    /// Older than the allowed maximum age.
    #[error("button has expired")]
    Expired,
    /// Issued more than [`MAX_CLOCK_SKEW_SECS`] after `now`.
    #[error("button was issued in the future")]
    FromTheFuture,
}

impl Reject {
    /// A short stable identifier for logs and counters (`bad_tag`, …).
    pub fn code(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::BadTag => "bad_tag",
            Reject::UnknownVersion => "unknown_version",
            Reject::UnknownAction => "unknown_action",
            Reject::Expired => "expired",
            Reject::FromTheFuture => "from_the_future",
        }
    }
}

/// The body bytes of `p` (everything the tag covers except chat and user).
struct Body {
    buf: [u8; MAX_BODY_LEN],
    len: usize,
}

impl Body {
    fn encode(p: &Payload) -> Body {
        let mut buf = [0u8; MAX_BODY_LEN];
        buf[0] = VERSION;
        buf[1] = p.action.as_u8();
        let mut len = 2 + write_varint(p.target, &mut buf[2..]);
        let issued =
            u32::try_from(p.issued_at).unwrap_or(if p.issued_at < 0 { 0 } else { u32::MAX });
        buf[len..len + 4].copy_from_slice(&issued.to_le_bytes());
        len += 4;
        buf[len..len + 8].copy_from_slice(&p.nonce.to_le_bytes());
        len += 8;
        Body { buf, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Parses an *authenticated* body. Field order matters for the error: the
/// version is judged first, then the action, then the rest of the layout.
fn decode_body(body: &[u8]) -> Result<Payload, Reject> {
    let (&version, rest) = body.split_first().ok_or(Reject::Malformed)?;
    if version != VERSION {
        return Err(Reject::UnknownVersion);
    }
    let (&action, rest) = rest.split_first().ok_or(Reject::Malformed)?;
    let action = Action::from_u8(action).ok_or(Reject::UnknownAction)?;
    let (target, rest) = read_varint(rest).ok_or(Reject::Malformed)?;
    let (issued, nonce) = match rest {
        [i0, i1, i2, i3, n @ ..] if n.len() == 8 => {
            let mut nb = [0u8; 8];
            nb.copy_from_slice(n);
            (
                u32::from_le_bytes([*i0, *i1, *i2, *i3]),
                u64::from_le_bytes(nb),
            )
        }
        _ => return Err(Reject::Malformed),
    };
    Ok(Payload {
        action,
        target,
        issued_at: i64::from(issued),
        nonce,
    })
}

/// Unsigned LEB128: 7 bits per byte, low groups first, high bit = "more".
/// Returns the number of bytes written (1..=10). `out` must hold 10 bytes.
fn write_varint(mut v: u64, out: &mut [u8]) -> usize {
    let mut i = 0;
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = low;
            return i + 1;
        }
        out[i] = low | 0x80;
        i += 1;
    }
}

/// Reads a minimal LEB128 `u64`; `None` on truncation, overflow or a
/// non-minimal encoding (a final `0x00` group after the first byte), so each
/// value has exactly one accepted encoding.
fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(MAX_VARINT_LEN) {
        let group = u64::from(b & 0x7f);
        if i == MAX_VARINT_LEN - 1 && b > 0x01 {
            return None; // would overflow 64 bits
        }
        v |= group << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return None; // non-minimal
            }
            return Some((v, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests;
