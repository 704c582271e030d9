//! Cost of one button press on the signing side and the verifying side.
//!
//! - `sign`: encode a payload and tag it (what every reply with buttons pays
//!   per button).
//! - `verify_ok`: a genuine press — base64 decode, one HMAC, parse, time
//!   checks.
//! - `verify_forged`: a press with a forged tag — the cost an attacker can
//!   impose per callback query (one HMAC with the current key; a second one
//!   only while a previous key is in its grace period, measured separately as
//!   `verify_forged_with_previous`).
//!
//! - `derive_random` / `derive_passphrase`: turning `MNEMO_CALLBACK_SECRET`
//!   into the key, once at start (HKDF-SHA256; Argon2id 64 MiB × 3).
//!
//! Run: `cargo bench --bench buttons`. Figures go to docs/BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mnemo::buttons::{Action, Keyring, Payload, DEFAULT_MAX_AGE_SECS};

const CHAT: i64 = -1_001_234_567_890;
const USER: i64 = 123_456_789;
const NOW: i64 = 1_767_225_600;

fn forge(data: &str) -> String {
    // Replace the last character: changes the tag (and keeps the string
    // decodable: 48 characters carry no unused bits).
    let mut s = data.to_owned();
    let last = s.pop().expect("non-empty");
    s.push(if last == 'A' { 'B' } else { 'A' });
    s
}

fn buttons(c: &mut Criterion) {
    let keys = Keyring::new([0x5a; 32]);
    let with_previous = Keyring::new([0x5a; 32]).with_previous([0xa5; 32], NOW + 3600);
    // The largest payload (10-byte varint): the worst case for every step.
    let payload = Payload {
        action: Action::Helpful,
        target: u64::MAX,
        issued_at: NOW,
        nonce: 0x0123_4567_89ab_cdef,
    };
    let data = keys.sign(&payload, CHAT, USER);
    let forged = forge(&data);
    assert!(keys
        .verify(&data, CHAT, USER, NOW, DEFAULT_MAX_AGE_SECS)
        .is_ok());
    assert!(keys
        .verify(&forged, CHAT, USER, NOW, DEFAULT_MAX_AGE_SECS)
        .is_err());

    c.bench_function("sign", |b| {
        b.iter(|| keys.sign(black_box(&payload), black_box(CHAT), black_box(USER)))
    });
    c.bench_function("verify_ok", |b| {
        b.iter(|| {
            keys.verify(
                black_box(&data),
                CHAT,
                USER,
                black_box(NOW),
                DEFAULT_MAX_AGE_SECS,
            )
        })
    });
    c.bench_function("verify_forged", |b| {
        b.iter(|| {
            keys.verify(
                black_box(&forged),
                CHAT,
                USER,
                black_box(NOW),
                DEFAULT_MAX_AGE_SECS,
            )
        })
    });
    c.bench_function("verify_forged_with_previous", |b| {
        b.iter(|| {
            with_previous.verify(
                black_box(&forged),
                CHAT,
                USER,
                black_box(NOW),
                DEFAULT_MAX_AGE_SECS,
            )
        })
    });
}

fn derive(c: &mut Criterion) {
    let random = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    c.bench_function("derive_random", |b| {
        b.iter(|| mnemo::buttons::derive_secret(black_box(random)))
    });
    c.bench_function("derive_passphrase", |b| {
        b.iter(|| mnemo::buttons::derive_secret(black_box("correct horse battery staple")))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = buttons
}
criterion_group! {
    name = kdf;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = derive
}
criterion_main!(benches, kdf);
