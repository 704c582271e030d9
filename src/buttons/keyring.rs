//! The signing keys and their file.
//!
//! # Where the key comes from
//!
//! 1. **`MNEMO_CALLBACK_SECRET`** (the caller passes its value): the key is
//!    derived once at start ([`derive_secret`]). A *random* secret — at
//!    least 32 characters, all from the hex/base64 alphabets
//!    (`A-Z a-z 0-9 + / = _ -`), at least 12 of them distinct, as
//!    `openssl rand -hex 32` or `-base64 32` give — is expanded with
//!    HKDF-SHA256. Anything else counts as a *passphrase* and goes through
//!    Argon2id (64 MiB, 3 passes, 1 lane; a fixed application salt, since
//!    nothing is stored): every button ever sent is an offline test for a
//!    guessed secret, and Argon2id makes each guess cost that much. Nothing
//!    secret is written to disk. Changing the secret invalidates buttons
//!    signed with the old *secret* at once; so did the move from the bare
//!    SHA-256 of earlier versions (those buttons get "expired or invalid":
//!    keeping the guessable key valid would keep the weakness).
//! 2. Otherwise **`<data dir>/callback.key`**, created with a random key and
//!    mode 0600 on first start, so buttons keep working across restarts.
//!
//! # The key file
//!
//! A small text file, written only atomically (temporary file with mode
//! 0600, `fsync`, `rename`/`link`, `fsync` of the directory):
//!
//! ```text
//! # mnemo callback signing key. Anyone who can read this file can forge button presses.
//! current 5f1c…(64 hex digits)
//! previous 9ab0…(64 hex digits) 1767225600
//! ```
//!
//! `current` signs and verifies. The optional `previous` line is a retired
//! key that still *verifies* until the unix time that follows it, so buttons
//! sent before a rotation keep working for a grace period. Blank lines and
//! `#` comments are ignored; anything else makes the file **corrupt**, which
//! is an error naming the file — it is never silently replaced, because a
//! new key would invalidate every button already sent.
//!
//! Moving from the file to `MNEMO_CALLBACK_SECRET` demotes the file's
//! `current` key to `previous` (valid for `grace_secs`) and removes the
//! `current` line; a file with only a `previous` line is valid, and if the
//! secret is later unset a new `current` key is generated next to it.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{
    decode_body, Body, Payload, Reject, DECODE_BUF_LEN, MAX_CLOCK_SKEW_SECS, MAX_ENCODED_LEN,
    TAG_LEN,
};

type HmacSha256 = Hmac<Sha256>;

/// Name of the key file inside the data directory.
pub const KEY_FILE: &str = "callback.key";
/// A key file larger than this is not a key file.
const MAX_KEY_FILE_LEN: u64 = 4096;
const KEY_LEN: usize = 32;
const HEADER: &str =
    "# mnemo callback signing key. Anyone who can read this file can forge button presses.\n";

/// The operating system's random source failed (practically never on
/// Linux; reported rather than panicking).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct EntropyError(String);

impl From<getrandom::Error> for EntropyError {
    fn from(e: getrandom::Error) -> Self {
        EntropyError(e.to_string())
    }
}

/// Loading, creating or rotating the key failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file exists but is not a valid key file. It was left as is.
    #[error(
        "callback key file {} is corrupt ({reason}); fix it or move it away \
         (a new key invalidates every button already sent)",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },
    /// Reading or writing the key file (or its directory) failed.
    #[error("callback key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `MNEMO_CALLBACK_SECRET` is set to the empty string.
    #[error("MNEMO_CALLBACK_SECRET is set but empty; unset it or give it a long random value")]
    EmptySecret,
    #[error(transparent)]
    Entropy(#[from] EntropyError),
}

/// How a secret from the environment becomes a key: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// High entropy by construction: HKDF-SHA256.
    Random,
    /// Anything else: Argon2id.
    Passphrase,
}

/// Which derivation `secret` gets: [`SecretKind::Random`] when it is at
/// least 32 characters from the hex/base64 alphabets with at least 12
/// distinct ones (≥ 128 bits if random); otherwise a passphrase.
pub fn secret_kind(secret: &str) -> SecretKind {
    let alphabet = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-');
    let distinct = secret
        .chars()
        .collect::<std::collections::HashSet<_>>()
        .len();
    if secret.chars().count() >= 32 && secret.chars().all(alphabet) && distinct >= 12 {
        SecretKind::Random
    } else {
        SecretKind::Passphrase
    }
}

/// Argon2id cost for passphrases: 64 MiB, 3 passes, 1 lane (well above
/// OWASP's 19 MiB × 2 minimum, still well under a second at start; see
/// BENCHMARKS).
const ARGON2_M_KIB: u32 = 64 * 1024;
const ARGON2_T: u32 = 3;

/// The signing key for `secret` (run once at start).
pub fn derive_secret(secret: &str) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    match secret_kind(secret) {
        SecretKind::Random => {
            hkdf::Hkdf::<Sha256>::new(Some(b"mnemo callback key v2"), secret.as_bytes())
                .expand(b"mnemo button signing key", &mut key)
                .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
        }
        SecretKind::Passphrase => {
            let params = argon2::Params::new(ARGON2_M_KIB, ARGON2_T, 1, Some(KEY_LEN))
                .unwrap_or_else(|_| unreachable!("fixed Argon2 parameters are valid"));
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(secret.as_bytes(), b"mnemo callback key v2 salt", &mut key)
                .unwrap_or_else(|_| {
                    unreachable!("a non-empty secret and a 26-byte salt are valid")
                });
        }
    }
    key
}

/// One key, with its HMAC state precomputed (the two key-schedule blocks are
/// hashed once, not per press).
#[derive(Clone)]
struct Key {
    bytes: [u8; KEY_LEN],
    mac: HmacSha256,
}

impl Key {
    fn new(bytes: [u8; KEY_LEN]) -> Key {
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = <HmacSha256 as Mac>::new_from_slice(&bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Key { bytes, mac }
    }

    fn random() -> Result<Key, EntropyError> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Key::new(bytes))
    }

    /// The MAC over `body ‖ chat_id LE ‖ user_id LE`, not yet finalized.
    fn mac(&self, body: &[u8], chat_id: i64, user_id: i64) -> HmacSha256 {
        let mut m = self.mac.clone();
        m.update(body);
        m.update(&chat_id.to_le_bytes());
        m.update(&user_id.to_le_bytes());
        m
    }

    /// A short non-secret identifier: 32 bits of a domain-separated hash.
    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"mnemo callback key fingerprint\0");
        h.update(self.bytes);
        hex::encode(&h.finalize()[..4])
    }
}

/// The keys that sign and verify callback data: the current key, and
/// optionally a previous key still accepted until a grace expiry.
///
/// Cheap to clone; `Debug` shows only fingerprints, never key bytes.
#[derive(Clone)]
pub struct Keyring {
    current: Key,
    /// Retired key and the unix second from which it is no longer accepted.
    previous: Option<(Key, i64)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field(
                "current",
                &format_args!("<fingerprint {}>", self.current.fingerprint()),
            )
            .field(
                "previous",
                &self
                    .previous
                    .as_ref()
                    .map(|(k, until)| format!("<fingerprint {}> until {until}", k.fingerprint())),
            )
            .finish()
    }
}

impl Keyring {
    /// A keyring with just `current` (tests, benches, callers with their own
    /// key source).
    pub fn new(current: [u8; KEY_LEN]) -> Keyring {
        Keyring {
            current: Key::new(current),
            previous: None,
        }
    }

    /// Also accept `previous` for verification until `expires_at` (unix
    /// seconds, exclusive).
    pub fn with_previous(mut self, previous: [u8; KEY_LEN], expires_at: i64) -> Keyring {
        self.previous = Some((Key::new(previous), expires_at));
        self
    }

    /// The key derived from a secret string ([`derive_secret`]).
    pub fn from_secret(secret: &str) -> Result<Keyring, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        Ok(Keyring::new(derive_secret(secret)))
    }

    /// Short non-secret identifier of the current key (for logs and
    /// `doctor`): equal fingerprints mean (almost surely) the same key.
    pub fn fingerprint(&self) -> String {
        self.current.fingerprint()
    }

    /// When the previous key stops being accepted, if there is one.
    pub fn previous_expires_at(&self) -> Option<i64> {
        self.previous.as_ref().map(|(_, until)| *until)
    }

    /// Callback data for `payload`, bound to the chat and user it is sent
    /// to. Always signs with the current key. The result is 36..=48
    /// base64url characters.
    pub fn sign(&self, payload: &Payload, chat_id: i64, user_id: i64) -> String {
        self.sign_body(Body::encode(payload).as_bytes(), chat_id, user_id)
    }

    fn render(&self) -> String {
        render_key_file(Some(&self.current), self.previous.as_ref())
    }

    /// Signs arbitrary body bytes (the layout checks come after the tag in
    /// `verify`, so tests can craft validly signed unknown versions).
    pub(super) fn sign_body(&self, body: &[u8], chat_id: i64, user_id: i64) -> String {
        let full = self
            .current
            .mac(body, chat_id, user_id)
            .finalize()
            .into_bytes();
        let mut raw = Vec::with_capacity(body.len() + TAG_LEN);
        raw.extend_from_slice(body);
        raw.extend_from_slice(&full[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks callback data pressed by `user_id` in `chat_id` at `now` (unix
    /// seconds) and returns its payload.
    ///
    /// Order: size and base64 → tag (current key, then the previous key if
    /// `now` is before its expiry) → version → action → layout → time. The
    /// tag is checked before any field is interpreted. A press exactly
    /// `max_age_secs` old is still accepted.
    ///
    /// This does not detect replays: for [`Payload::single_use`] presses the
    /// caller must record and check [`Payload::nonce`].
    pub fn verify(
        &self,
        data: &str,
        chat_id: i64,
        user_id: i64,
        now: i64,
        max_age_secs: i64,
    ) -> Result<Payload, Reject> {
        if data.is_empty() || data.len() > MAX_ENCODED_LEN {
            return Err(Reject::Malformed);
        }
        let mut raw = [0u8; DECODE_BUF_LEN];
        let n = URL_SAFE_NO_PAD
            .decode_slice(data.as_bytes(), &mut raw)
            .map_err(|_| Reject::Malformed)?;
        // At most 48 bytes fit in 64 characters; the body length is judged
        // by its version, after the tag.
        if n <= TAG_LEN {
            return Err(Reject::Malformed);
        }
        let (body, tag) = raw[..n].split_at(n - TAG_LEN);

        let by_current = self
            .current
            .mac(body, chat_id, user_id)
            .verify_truncated_left(tag)
            .is_ok();
        let authentic = by_current
            || match &self.previous {
                Some((key, until)) if now < *until => key
                    .mac(body, chat_id, user_id)
                    .verify_truncated_left(tag)
                    .is_ok(),
                _ => false,
            };
        if !authentic {
            return Err(Reject::BadTag);
        }

        let payload = decode_body(body)?;
        if payload.issued_at > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(Reject::FromTheFuture);
        }
        if now.saturating_sub(payload.issued_at) > max_age_secs {
            return Err(Reject::Expired);
        }
        Ok(payload)
    }

    /// The keyring for this process.
    ///
    /// With `env_secret` (the value of `MNEMO_CALLBACK_SECRET`), the current
    /// key is `SHA-256(secret)`; if `dir/callback.key` holds a different
    /// current key (the bot used a generated key before), that key is
    /// demoted to previous, valid until `now + grace_secs`, and the file is
    /// rewritten without a current key. Without `env_secret`, the key comes
    /// from `dir/callback.key`, which is created (mode 0600, and `dir` with
    /// 0700 if missing) when absent.
    ///
    /// A corrupt key file is an error naming it; it is never replaced. A
    /// key file readable by group or others is used but logged as a warning.
    pub fn load_or_create(
        dir: &Path,
        env_secret: Option<&str>,
        grace_secs: i64,
        now: i64,
    ) -> Result<Keyring, KeyError> {
        let path = dir.join(KEY_FILE);
        if let Some(secret) = env_secret {
            let mut ring = Keyring::from_secret(secret)?;
            let Some(file) = read_key_file(&path)? else {
                return Ok(ring);
            };
            let mut previous = file.previous;
            if let Some(old) = file.current {
                if old.bytes != ring.current.bytes {
                    previous = Some((old, now.saturating_add(grace_secs)));
                    write_replace(dir, &render_key_file(None, previous.as_ref()))?;
                    tracing::info!(
                        file = %path.display(),
                        grace_secs,
                        "callback key now from MNEMO_CALLBACK_SECRET; the generated key stays valid for the grace period"
                    );
                }
            }
            ring.previous = previous;
            return Ok(ring);
        }

        match read_key_file(&path)? {
            Some(KeyFile {
                current: Some(current),
                previous,
            }) => Ok(Keyring { current, previous }),
            Some(KeyFile {
                current: None,
                previous,
            }) => {
                // Left behind by the secret → file switch above.
                let ring = Keyring {
                    current: Key::random()?,
                    previous,
                };
                write_replace(dir, &ring.render())?;
                Ok(ring)
            }
            None => {
                ensure_dir(dir)?;
                let ring = Keyring {
                    current: Key::random()?,
                    previous: None,
                };
                if write_new(dir, &ring.render())? {
                    tracing::info!(file = %path.display(), "created a new callback signing key");
                    return Ok(ring);
                }
                // Another process created it first: use theirs.
                match read_key_file(&path)? {
                    Some(KeyFile {
                        current: Some(current),
                        previous,
                    }) => Ok(Keyring { current, previous }),
                    _ => Err(KeyError::Corrupt {
                        path,
                        reason: "changed by another process while being created".into(),
                    }),
                }
            }
        }
    }

    /// Replaces the current key in `dir/callback.key` with a fresh random
    /// one and keeps the old current key as previous until `now +
    /// grace_secs` (an older previous key is dropped). Creates the file if
    /// it is absent. Only meaningful without `MNEMO_CALLBACK_SECRET`; with a
    /// secret, change the secret instead.
    pub fn rotate(dir: &Path, grace_secs: i64, now: i64) -> Result<Keyring, KeyError> {
        let path = dir.join(KEY_FILE);
        let Some(old) = read_key_file(&path)? else {
            return Keyring::load_or_create(dir, None, grace_secs, now);
        };
        let previous = match old.current {
            Some(key) => Some((key, now.saturating_add(grace_secs))),
            None => old.previous,
        };
        let ring = Keyring {
            current: Key::random()?,
            previous,
        };
        write_replace(dir, &ring.render())?;
        tracing::info!(file = %path.display(), grace_secs, "rotated the callback signing key");
        Ok(ring)
    }
}

/// The parsed key file.
struct KeyFile {
    current: Option<Key>,
    previous: Option<(Key, i64)>,
}

impl KeyFile {
    fn parse(text: &str) -> Result<KeyFile, String> {
        let mut file = KeyFile {
            current: None,
            previous: None,
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let lineno = i + 1;
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            match fields.as_slice() {
                ["current", key] if file.current.is_none() => {
                    file.current = Some(parse_key(key).ok_or(format!("line {lineno}: bad key"))?);
                }
                ["previous", key, until] if file.previous.is_none() => {
                    let key = parse_key(key).ok_or(format!("line {lineno}: bad key"))?;
                    let until: i64 = until
                        .parse()
                        .map_err(|_| format!("line {lineno}: bad expiry time"))?;
                    file.previous = Some((key, until));
                }
                [first, ..] => {
                    let first: String = first.chars().take(16).collect();
                    return Err(format!(
                        "line {lineno}: unexpected or repeated entry {first:?}"
                    ));
                }
                [] => {}
            }
        }
        if file.current.is_none() && file.previous.is_none() {
            return Err("no key in it".into());
        }
        Ok(file)
    }
}

/// The key file's text for these keys.
fn render_key_file(current: Option<&Key>, previous: Option<&(Key, i64)>) -> String {
    let mut s = String::from(HEADER);
    if let Some(k) = current {
        s.push_str(&format!("current {}\n", hex::encode(k.bytes.as_slice())));
    }
    if let Some((k, until)) = previous {
        s.push_str(&format!(
            "previous {} {until}\n",
            hex::encode(k.bytes.as_slice())
        ));
    }
    s
}

/// `None` when the file does not exist.
fn read_key_file(path: &Path) -> Result<Option<KeyFile>, KeyError> {
    let io_err = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |reason: &str| KeyError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let meta = f.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(corrupt("not a regular file"));
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(corrupt("too large"));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "callback key file is readable by other users; run chmod 600 on it"
        );
    }
    let mut bytes = Vec::new();
    f.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("not UTF-8 text"))?;
    KeyFile::parse(text)
        .map(Some)
        .map_err(|reason| corrupt(&reason))
}

fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeyError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `file` to a fresh temporary file (0600) in `dir`, synced.
fn write_temp(dir: &Path, contents: &str) -> Result<PathBuf, KeyError> {
    let tmp = dir.join(format!(
        ".{KEY_FILE}.{:016x}.tmp",
        getrandom::u64().map_err(EntropyError::from)?
    ));
    let io_err = |source| KeyError::Io {
        path: tmp.clone(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err)?;
    let written = f.write_all(contents.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(e));
    }
    Ok(tmp)
}

fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| KeyError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Atomically replaces `dir/callback.key`.
fn write_replace(dir: &Path, contents: &str) -> Result<(), KeyError> {
    let path = dir.join(KEY_FILE);
    let tmp = write_temp(dir, contents)?;
    if let Err(source) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(KeyError::Io { path, source });
    }
    sync_dir(dir)
}

/// Atomically creates `dir/callback.key` unless it exists (then `false`):
/// `link(2)` never overwrites, so two processes racing to create the key
/// cannot end up using different keys.
fn write_new(dir: &Path, contents: &str) -> Result<bool, KeyError> {
    let path = dir.join(KEY_FILE);
    let tmp = write_temp(dir, contents)?;
    let linked = match fs::hard_link(&tmp, &path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // File systems without hard links: rename (the race is then lost by
        // the first writer, which is still one consistent key on disk).
        Err(_) => fs::rename(&tmp, &path).map(|()| true),
    };
    let _ = fs::remove_file(&tmp);
    let created = linked.map_err(|source| KeyError::Io {
        path: path.clone(),
        source,
    })?;
    sync_dir(dir)?;
    Ok(created)
}

fn parse_key(s: &str) -> Option<Key> {
    let mut bytes = [0u8; KEY_LEN];
    hex::decode_to_slice(s, &mut bytes).ok()?;
    Some(Key::new(bytes))
}
