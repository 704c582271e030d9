use std::fs;
use std::os::unix::fs::PermissionsExt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;

const CHAT: i64 = -1_001_234_567_890;
const USER: i64 = 123_456_789;
/// 2026-01-01T00:00:00Z
const NOW: i64 = 1_767_225_600;
const AGE: i64 = DEFAULT_MAX_AGE_SECS;
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn ring() -> Keyring {
    Keyring::new([0x42; 32])
}

fn payload(action: Action, target: u64) -> Payload {
    Payload {
        action,
        target,
        issued_at: NOW - 10,
        nonce: 0xdead_beef_cafe_f00d,
    }
}

fn check(keys: &Keyring, data: &str) -> Result<Payload, Reject> {
    keys.verify(data, CHAT, USER, NOW, AGE)
}

/// Validly signed callback data around an arbitrary body.
fn signed_body(body: &[u8]) -> String {
    ring().sign_body(body, CHAT, USER)
}

/// A valid version-1 body with a replaced byte at `index`.
fn v1_body_with(index: usize, value: u8) -> Vec<u8> {
    let mut body = Body::encode(&payload(Action::Helpful, 7))
        .as_bytes()
        .to_vec();
    body[index] = value;
    body
}

/// SplitMix64: a tiny deterministic generator, so a failing fuzz case
/// reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn b64_char(&mut self) -> char {
        char::from(B64URL[self.below(B64URL.len())])
    }

    fn noise_char(&mut self) -> char {
        const NOISE: [char; 10] = ['=', '+', '/', ' ', '.', '\n', '\0', 'é', '€', '🔁'];
        NOISE[self.below(NOISE.len())]
    }
}

// ---- codec -------------------------------------------------------------

#[test]
fn round_trip_every_action_and_edge_targets() {
    let keys = ring();
    for action in Action::ALL {
        for target in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let p = payload(action, target);
            let data = keys.sign(&p, CHAT, USER);
            assert_eq!(check(&keys, &data), Ok(p), "{action:?} {target}");
        }
    }
}

#[test]
fn encoded_length_extremes() {
    let keys = ring();
    let short = keys.sign(&payload(Action::Helpful, 0), CHAT, USER);
    let long = keys.sign(
        &Payload {
            issued_at: i64::MAX,
            ..payload(Action::Retranscribe, u64::MAX)
        },
        i64::MIN,
        i64::MAX,
    );
    assert_eq!(short.len(), 36);
    assert_eq!(long.len(), 48);
}

#[test]
fn actions_and_single_use() {
    for action in Action::ALL {
        assert_eq!(Action::from_u8(action.as_u8()), Some(action));
    }
    for byte in [0, 11, 12, 0x7f, 0x80, 0xff] {
        assert_eq!(Action::from_u8(byte), None);
    }
    let single: Vec<Action> = Action::ALL.into_iter().filter(|a| a.single_use()).collect();
    assert_eq!(single, [Action::Undo, Action::Done, Action::Retranscribe]);
    assert!(payload(Action::Undo, 1).single_use());
    assert!(!payload(Action::Helpful, 1).single_use());
}

#[test]
fn payload_new_draws_fresh_nonces() {
    let a = Payload::new(Action::Undo, 9, NOW).unwrap();
    let b = Payload::new(Action::Undo, 9, NOW).unwrap();
    assert_ne!(a.nonce, b.nonce, "64 random bits collided");
    let keys = ring();
    assert_ne!(keys.sign(&a, CHAT, USER), keys.sign(&b, CHAT, USER));
}

#[test]
fn varint_round_trips_and_rejects_non_minimal() {
    let mut buf = [0u8; MAX_VARINT_LEN];
    for (v, len) in [
        (0, 1),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (u64::MAX >> 1, 9),
        (u64::MAX, 10),
    ] {
        let n = write_varint(v, &mut buf);
        assert_eq!(n, len, "{v}");
        assert_eq!(read_varint(&buf[..n]), Some((v, &[][..])));
    }
    assert_eq!(read_varint(&[]), None);
    assert_eq!(read_varint(&[0x80]), None, "truncated");
    assert_eq!(read_varint(&[0x80, 0x00]), None, "non-minimal");
    assert_eq!(
        read_varint(&[0xff; 9].iter().copied().chain([0x02]).collect::<Vec<_>>()),
        None,
        "overflow"
    );
    assert_eq!(read_varint(&[0xff; 11]), None, "too long");
    assert_eq!(read_varint(&[0x05, 0xaa]), Some((5, &[0xaa][..])));
}

// ---- tampering ---------------------------------------------------------

#[test]
fn flipped_bit_anywhere_in_the_string_is_rejected() {
    let keys = ring();
    let mut tried = 0;
    for action in Action::ALL {
        // 128 needs a two-byte varint: 28 raw bytes, so the last character
        // carries unused bits too.
        for target in [5, 128, u64::MAX] {
            let data = keys.sign(&payload(action, target), CHAT, USER);
            for i in 0..data.len() {
                for bit in 0..8 {
                    let mut bytes = data.clone().into_bytes();
                    bytes[i] ^= 1 << bit;
                    // A bit flip that breaks UTF-8 cannot arrive as &str.
                    let Ok(mutated) = String::from_utf8(bytes) else {
                        continue;
                    };
                    assert!(
                        check(&keys, &mutated).is_err(),
                        "accepted {mutated} (from {data})"
                    );
                    tried += 1;
                }
            }
        }
    }
    assert!(tried > 5_000, "{tried}");
}

#[test]
fn flipped_bit_in_any_raw_byte_is_a_bad_tag() {
    let keys = ring();
    for action in Action::ALL {
        let data = keys.sign(&payload(action, u64::MAX), CHAT, USER);
        let raw = URL_SAFE_NO_PAD.decode(&data).unwrap();
        for i in 0..raw.len() {
            for bit in 0..8 {
                let mut m = raw.clone();
                m[i] ^= 1 << bit;
                assert_eq!(
                    check(&keys, &URL_SAFE_NO_PAD.encode(&m)),
                    Err(Reject::BadTag),
                    "byte {i} bit {bit}"
                );
            }
        }
    }
}

#[test]
fn other_user_or_chat_is_a_bad_tag() {
    let keys = ring();
    let data = keys.sign(&payload(Action::Undo, 99), CHAT, USER);
    assert!(keys.verify(&data, CHAT, USER, NOW, AGE).is_ok());
    for (chat, user) in [
        (CHAT, USER + 1),
        (CHAT, -USER),
        (CHAT + 1, USER),
        (USER, USER),
        (USER, CHAT),
        (0, 0),
    ] {
        assert_eq!(
            keys.verify(&data, chat, user, NOW, AGE),
            Err(Reject::BadTag),
            "{chat} {user}"
        );
    }
    // A private chat (chat id == user id) is just another chat.
    let private = keys.sign(&payload(Action::Undo, 99), USER, USER);
    assert!(keys.verify(&private, USER, USER, NOW, AGE).is_ok());
    assert_eq!(
        keys.verify(&private, CHAT, USER, NOW, AGE),
        Err(Reject::BadTag)
    );
}

#[test]
fn another_key_is_a_bad_tag() {
    let data = ring().sign(&payload(Action::Done, 3), CHAT, USER);
    assert_eq!(check(&Keyring::new([0x43; 32]), &data), Err(Reject::BadTag));
}

#[test]
fn truncated_tags_are_rejected() {
    let keys = ring();
    let raw = URL_SAFE_NO_PAD
        .decode(keys.sign(&payload(Action::Helpful, 1), CHAT, USER))
        .unwrap();
    for cut in 1..raw.len() {
        let data = URL_SAFE_NO_PAD.encode(&raw[..raw.len() - cut]);
        assert!(check(&keys, &data).is_err(), "cut {cut}");
    }
}

#[test]
fn malformed_strings() {
    let keys = ring();
    let good = keys.sign(&payload(Action::Helpful, 128), CHAT, USER);
    assert_eq!(
        good.len(),
        38,
        "28 raw bytes leave 4 unused bits in the last character"
    );
    let mut cases = vec![
        String::new(),
        "=".into(),
        "A".into(),
        "AAAA".into(),
        "A".repeat(65),
        format!("{good}="),
        format!("{good}=="),
        format!(" {good}"),
        format!("{good}\n"),
        good.replace(['-', '_'], "+"),
        good.replacen(char::is_alphanumeric, "/", 1),
        good.replacen(char::is_alphanumeric, "é", 1),
    ];
    // Non-zero unused trailing bits: same bytes, different string.
    let last = good.as_bytes()[good.len() - 1];
    let pos = B64URL.iter().position(|&c| c == last).unwrap();
    cases.push(format!(
        "{}{}",
        &good[..good.len() - 1],
        char::from(B64URL[pos ^ 1])
    ));
    for case in cases {
        if case == good {
            continue;
        }
        assert_eq!(check(&keys, &case), Err(Reject::Malformed), "{case:?}");
    }
}

// ---- versions, actions, layout behind a valid tag ----------------------

#[test]
fn unknown_version_with_a_valid_tag() {
    let keys = ring();
    for version in [0, 2, 3, 0x80, 0xff] {
        assert_eq!(
            check(&keys, &signed_body(&v1_body_with(0, version))),
            Err(Reject::UnknownVersion)
        );
        // The version is judged before the rest of the layout.
        assert_eq!(
            check(&keys, &signed_body(&[version])),
            Err(Reject::UnknownVersion)
        );
        assert_eq!(
            check(&keys, &signed_body(&[version; 36])),
            Err(Reject::UnknownVersion)
        );
    }
    // With a bad tag it is just a bad tag.
    let mut raw = URL_SAFE_NO_PAD
        .decode(signed_body(&v1_body_with(0, 2)))
        .unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    assert_eq!(
        check(&keys, &URL_SAFE_NO_PAD.encode(&raw)),
        Err(Reject::BadTag)
    );
}

#[test]
fn unknown_action_with_a_valid_tag() {
    let keys = ring();
    for action in [0, 11, 12, 0x7f, 0xff] {
        assert_eq!(
            check(&keys, &signed_body(&v1_body_with(1, action))),
            Err(Reject::UnknownAction),
            "{action}"
        );
    }
}

#[test]
fn bad_layout_with_a_valid_tag_is_malformed() {
    let keys = ring();
    let good = Body::encode(&payload(Action::Helpful, 7))
        .as_bytes()
        .to_vec();
    let mut long = good.clone();
    long.push(0);
    let mut non_minimal = vec![1, 1, 0x87, 0x00];
    non_minimal.extend_from_slice(&good[3..]);
    for body in [
        vec![1],
        vec![1, 1],
        good[..good.len() - 1].to_vec(),
        long,
        non_minimal,
    ] {
        assert_eq!(
            check(&keys, &signed_body(&body)),
            Err(Reject::Malformed),
            "{body:?}"
        );
    }
    assert!(check(&keys, &signed_body(&good)).is_ok());
}

// ---- time --------------------------------------------------------------

#[test]
fn expiry_is_inclusive_of_max_age() {
    let keys = ring();
    let at = |issued_at| {
        keys.sign(
            &Payload {
                issued_at,
                ..payload(Action::Helpful, 1)
            },
            CHAT,
            USER,
        )
    };
    assert!(check(&keys, &at(NOW - AGE)).is_ok());
    assert_eq!(check(&keys, &at(NOW - AGE - 1)), Err(Reject::Expired));
    assert_eq!(check(&keys, &at(0)), Err(Reject::Expired));
    // Configurable.
    assert!(keys.verify(&at(NOW - 60), CHAT, USER, NOW, 60).is_ok());
    assert_eq!(
        keys.verify(&at(NOW - 61), CHAT, USER, NOW, 60),
        Err(Reject::Expired)
    );
}

#[test]
fn issue_times_beyond_the_skew_are_from_the_future() {
    let keys = ring();
    let at = |issued_at| {
        keys.sign(
            &Payload {
                issued_at,
                ..payload(Action::Done, 1)
            },
            CHAT,
            USER,
        )
    };
    assert!(check(&keys, &at(NOW + MAX_CLOCK_SKEW_SECS)).is_ok());
    assert_eq!(
        check(&keys, &at(NOW + MAX_CLOCK_SKEW_SECS + 1)),
        Err(Reject::FromTheFuture)
    );
    assert_eq!(check(&keys, &at(NOW + 86_400)), Err(Reject::FromTheFuture));
}

#[test]
fn out_of_range_issue_times_are_clamped_to_rejections() {
    let keys = ring();
    let at = |issued_at| {
        keys.sign(
            &Payload {
                issued_at,
                ..payload(Action::Helpful, 1)
            },
            CHAT,
            USER,
        )
    };
    assert_eq!(check(&keys, &at(-1)), Err(Reject::Expired));
    assert_eq!(check(&keys, &at(i64::MIN)), Err(Reject::Expired));
    assert_eq!(check(&keys, &at(i64::MAX)), Err(Reject::FromTheFuture));
    // Extreme clocks on the verifying side do not overflow.
    assert_eq!(
        keys.verify(&at(NOW), CHAT, USER, i64::MAX, AGE),
        Err(Reject::Expired)
    );
    assert_eq!(
        keys.verify(&at(NOW), CHAT, USER, i64::MIN, AGE),
        Err(Reject::FromTheFuture)
    );
}

// ---- keys --------------------------------------------------------------

#[test]
fn previous_key_is_accepted_only_before_its_expiry() {
    let old = Keyring::new([1; 32]);
    let new = Keyring::new([2; 32]).with_previous([1; 32], NOW + 100);
    assert_eq!(new.previous_expires_at(), Some(NOW + 100));
    let p = payload(Action::Undo, 5);
    let data = old.sign(&p, CHAT, USER);
    assert_eq!(new.verify(&data, CHAT, USER, NOW, AGE), Ok(p));
    assert_eq!(new.verify(&data, CHAT, USER, NOW + 99, AGE), Ok(p));
    assert_eq!(
        new.verify(&data, CHAT, USER, NOW + 100, AGE),
        Err(Reject::BadTag)
    );
    assert_eq!(
        new.verify(&data, CHAT, USER, NOW + 10_000, AGE),
        Err(Reject::BadTag)
    );
    // Signing always uses the current key.
    let fresh = new.sign(&p, CHAT, USER);
    assert!(Keyring::new([2; 32])
        .verify(&fresh, CHAT, USER, NOW, AGE)
        .is_ok());
    assert_eq!(
        old.verify(&fresh, CHAT, USER, NOW, AGE),
        Err(Reject::BadTag)
    );
}

#[test]
fn debug_does_not_show_key_bytes() {
    let key = [0xab; 32];
    let keys = Keyring::new(key).with_previous([0xcd; 32], NOW);
    let shown = format!("{keys:?} {keys:#?}");
    assert!(
        !shown.contains("abab") && !shown.contains("cdcd") && !shown.contains("171"),
        "{shown}"
    );
    assert!(shown.contains(&keys.fingerprint()), "{shown}");
    assert_eq!(keys.fingerprint().len(), 8);
}

// ---- fuzz --------------------------------------------------------------

#[test]
fn fuzz_random_and_mutated_data_is_never_accepted() {
    let keys = ring();
    let mut rng = Rng(0x6d6e_656d_6f21);

    // Random strings: two thirds purely from the base64url alphabet (many
    // decode and reach the tag check), one third with noise characters.
    let mut random = 0;
    let mut decodable = 0;
    while random < 12_000 {
        let len = rng.below(72);
        let noisy = rng.below(3) == 0;
        let s: String = (0..len)
            .map(|_| {
                if noisy && rng.below(10) == 0 {
                    rng.noise_char()
                } else {
                    rng.b64_char()
                }
            })
            .collect();
        if URL_SAFE_NO_PAD
            .decode(&s)
            .is_ok_and(|raw| raw.len() > TAG_LEN)
        {
            decodable += 1;
        }
        assert!(check(&keys, &s).is_err(), "accepted random {s:?}");
        random += 1;
    }
    assert!(
        decodable > 1_500,
        "too few random strings reached the tag check: {decodable}"
    );

    // Mutations of valid data.
    let mut mutated = 0;
    while mutated < 12_000 {
        let p = Payload {
            action: Action::ALL[rng.below(Action::ALL.len())],
            target: rng.next() >> rng.below(64),
            issued_at: NOW - rng.below(1_000) as i64,
            nonce: rng.next(),
        };
        let original = keys.sign(&p, CHAT, USER);
        assert_eq!(check(&keys, &original), Ok(p));
        let mut s = original.clone();
        for _ in 0..1 + rng.below(4) {
            s = mutate(&mut rng, &s);
        }
        if s == original {
            continue;
        }
        assert!(
            check(&keys, &s).is_err(),
            "accepted {s:?} mutated from {original:?}"
        );
        mutated += 1;
    }
}

fn mutate(rng: &mut Rng, s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    match rng.below(8) {
        // Bit flip in the decoded bytes, re-encoded validly.
        0 | 1 => match URL_SAFE_NO_PAD.decode(s) {
            Ok(mut raw) if !raw.is_empty() => {
                let i = rng.below(raw.len());
                raw[i] ^= 1 << rng.below(8);
                return URL_SAFE_NO_PAD.encode(raw);
            }
            _ => chars.push(rng.b64_char()),
        },
        // Bit flip in the string itself.
        2 => {
            let mut bytes = s.as_bytes().to_vec();
            if !bytes.is_empty() {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(7);
            }
            return String::from_utf8(bytes).unwrap_or_default();
        }
        // Truncation.
        3 => chars.truncate(rng.below(chars.len().max(1))),
        // Extension.
        4 => (0..1 + rng.below(8)).for_each(|_| chars.push(rng.b64_char())),
        // Alphabet noise: replace, insert or delete one character.
        5 if !chars.is_empty() => {
            let i = rng.below(chars.len());
            chars[i] = rng.b64_char();
        }
        6 => {
            let i = rng.below(chars.len() + 1);
            let c = if rng.below(2) == 0 {
                rng.noise_char()
            } else {
                rng.b64_char()
            };
            chars.insert(i, c);
        }
        _ if !chars.is_empty() => {
            chars.remove(rng.below(chars.len()));
        }
        _ => {}
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn encoded_data_always_fits_telegram(
        action in 1u8..=6,
        target in prop_oneof![Just(u64::MAX), Just(0u64), any::<u64>()],
        issued_at in prop_oneof![Just(i64::MAX), Just(i64::MIN), 0i64..=i64::from(u32::MAX), any::<i64>()],
        nonce in any::<u64>(),
        chat in any::<i64>(),
        user in any::<i64>(),
    ) {
        let action = Action::from_u8(action).unwrap();
        let p = Payload { action, target, issued_at, nonce };
        let data = ring().sign(&p, chat, user);
        prop_assert!((1..=MAX_ENCODED_LEN).contains(&data.len()), "{} bytes", data.len());
        prop_assert!((36..=48).contains(&data.len()));
        prop_assert!(data.bytes().all(|b| B64URL.contains(&b)));
        if (0..=i64::from(u32::MAX)).contains(&issued_at) {
            prop_assert_eq!(ring().verify(&data, chat, user, issued_at, 0), Ok(p));
        }
    }
}

// ---- key file ----------------------------------------------------------

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != KEY_FILE)
        .collect()
}

#[test]
fn key_file_is_created_0600_and_persists_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let first = Keyring::load_or_create(&dir, None, 3600, NOW).unwrap();
    let path = dir.join(KEY_FILE);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir), 0o700);
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("current ") && l.len() == 8 + 64),
        "{text}"
    );

    let data = first.sign(&payload(Action::Undo, 1), CHAT, USER);
    let again = Keyring::load_or_create(&dir, None, 3600, NOW + 5).unwrap();
    assert_eq!(again.fingerprint(), first.fingerprint());
    assert!(
        check(&again, &data).is_ok(),
        "a press from before the restart"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        text,
        "loading does not rewrite"
    );
}

#[test]
fn rotation_keeps_old_presses_valid_for_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let k1 = Keyring::load_or_create(dir, None, 0, NOW).unwrap();
    let p = payload(Action::Helpful, 77);
    let old = k1.sign(&p, CHAT, USER);

    let k2 = Keyring::rotate(dir, 3600, NOW).unwrap();
    assert_ne!(k2.fingerprint(), k1.fingerprint());
    assert_eq!(k2.previous_expires_at(), Some(NOW + 3600));
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
    let new = k2.sign(&p, CHAT, USER);
    assert_eq!(
        check(&k1, &new),
        Err(Reject::BadTag),
        "new presses use the new key"
    );

    // In memory and after a restart alike.
    let reloaded = Keyring::load_or_create(dir, None, 3600, NOW + 10).unwrap();
    for keys in [&k2, &reloaded] {
        assert_eq!(keys.verify(&old, CHAT, USER, NOW + 3599, AGE), Ok(p));
        assert_eq!(
            keys.verify(&old, CHAT, USER, NOW + 3600, AGE),
            Err(Reject::BadTag)
        );
        assert_eq!(keys.verify(&new, CHAT, USER, NOW + 3600, AGE), Ok(p));
    }

    // A second rotation retires k2 and forgets k1.
    let k3 = Keyring::rotate(dir, 60, NOW + 100).unwrap();
    assert_eq!(k3.verify(&new, CHAT, USER, NOW + 100, AGE), Ok(p));
    assert_eq!(
        k3.verify(&old, CHAT, USER, NOW + 100, AGE),
        Err(Reject::BadTag)
    );
}

#[test]
fn rotate_without_a_file_creates_one() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keyring::rotate(tmp.path(), 60, NOW).unwrap();
    assert_eq!(keys.previous_expires_at(), None);
    assert_eq!(mode(&tmp.path().join(KEY_FILE)), 0o600);
}

#[test]
fn corrupt_key_file_is_an_error_naming_it_and_is_left_alone() {
    let hex64 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"# only a comment\n".to_vec(),
        b"garbage".to_vec(),
        format!("current {}", &hex64[1..]).into_bytes(),
        format!("current {}zz", &hex64[2..]).into_bytes(),
        format!("current {hex64} extra").into_bytes(),
        format!("current {hex64}\ncurrent {hex64}\n").into_bytes(),
        format!("current {hex64}\nprevious {hex64}\n").into_bytes(),
        format!("current {hex64}\nprevious {hex64} soon\n").into_bytes(),
        format!("{hex64}\n").into_bytes(),
        vec![0xff, 0xfe, b'\n'],
        vec![b'#'; 5000],
    ];
    for contents in cases {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(KEY_FILE);
        fs::write(&path, &contents).unwrap();
        for result in [
            Keyring::load_or_create(tmp.path(), None, 60, NOW),
            Keyring::rotate(tmp.path(), 60, NOW),
            Keyring::load_or_create(tmp.path(), Some("a long random secret"), 60, NOW),
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, KeyError::Corrupt { .. }), "{err:?}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
        assert_eq!(fs::read(&path).unwrap(), contents, "never replaced");
    }
}

#[test]
fn key_file_accepts_comments_blank_lines_and_uppercase_hex() {
    let tmp = tempfile::tempdir().unwrap();
    let hex64 = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";
    fs::write(
        tmp.path().join(KEY_FILE),
        format!(
            "# hi\n\n  current {hex64}  \nprevious {hex64} {}\n",
            NOW + 5
        ),
    )
    .unwrap();
    let keys = Keyring::load_or_create(tmp.path(), None, 60, NOW).unwrap();
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex64[2 * i..2 * i + 2], 16).unwrap();
    }
    assert_eq!(keys.fingerprint(), Keyring::new(bytes).fingerprint());
    assert_eq!(keys.previous_expires_at(), Some(NOW + 5));
}

#[test]
fn env_secret_is_derived_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let keys =
        Keyring::load_or_create(tmp.path(), Some("correct horse battery staple"), 60, NOW).unwrap();
    let expected = Keyring::new(derive_secret("correct horse battery staple"));
    assert_eq!(keys.fingerprint(), expected.fingerprint());
    // Not the bare SHA-256 of earlier versions.
    let bare = Keyring::new(Sha256::digest(b"correct horse battery staple").into());
    assert_ne!(keys.fingerprint(), bare.fingerprint());
    let data = expected.sign(&payload(Action::Done, 4), CHAT, USER);
    assert!(check(&keys, &data).is_ok());
    assert!(!tmp.path().join(KEY_FILE).exists());
    assert!(matches!(
        Keyring::load_or_create(tmp.path(), Some(""), 60, NOW),
        Err(KeyError::EmptySecret)
    ));
}

#[test]
fn switching_to_an_env_secret_keeps_the_generated_key_for_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let generated = Keyring::load_or_create(dir, None, 0, NOW).unwrap();
    let p = payload(Action::Undo, 8);
    let old = generated.sign(&p, CHAT, USER);

    let env = Keyring::load_or_create(dir, Some("s3cret-s3cret-s3cret"), 600, NOW).unwrap();
    assert_eq!(env.verify(&old, CHAT, USER, NOW + 599, AGE), Ok(p));
    assert_eq!(
        env.verify(&old, CHAT, USER, NOW + 600, AGE),
        Err(Reject::BadTag)
    );
    let text = fs::read_to_string(dir.join(KEY_FILE)).unwrap();
    assert!(
        !text.contains("current"),
        "the env-derived key is never written: {text}"
    );
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);

    // A restart later does not extend the grace period.
    let env2 = Keyring::load_or_create(dir, Some("s3cret-s3cret-s3cret"), 600, NOW + 300).unwrap();
    assert_eq!(env2.previous_expires_at(), Some(NOW + 600));

    // Unsetting the secret again: a new generated key, the old one still in grace.
    let back = Keyring::load_or_create(dir, None, 600, NOW + 400).unwrap();
    assert_ne!(back.fingerprint(), generated.fingerprint());
    assert_ne!(back.fingerprint(), env.fingerprint());
    assert_eq!(back.verify(&old, CHAT, USER, NOW + 401, AGE), Ok(p));
    assert_eq!(
        Keyring::load_or_create(dir, None, 600, NOW + 500)
            .unwrap()
            .fingerprint(),
        back.fingerprint()
    );
}

#[test]
fn a_world_readable_key_file_still_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Keyring::load_or_create(tmp.path(), None, 0, NOW).unwrap();
    let path = tmp.path().join(KEY_FILE);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let again = Keyring::load_or_create(tmp.path(), None, 0, NOW).unwrap();
    assert_eq!(again.fingerprint(), first.fingerprint());
}

#[test]
fn random_secrets_get_hkdf_and_passphrases_argon2id() {
    use super::{secret_kind, SecretKind};
    let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let b64 = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
    assert_eq!(secret_kind(hex), SecretKind::Random);
    assert_eq!(secret_kind(b64), SecretKind::Random);
    for weak in [
        "correct horse battery staple",
        "s3cret-long-enough-for-a-key",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "short",
    ] {
        assert_eq!(secret_kind(weak), SecretKind::Passphrase, "{weak}");
    }
    // Deterministic (the same key at every start), distinct per secret.
    assert_eq!(derive_secret(hex), derive_secret(hex));
    assert_ne!(derive_secret(hex), derive_secret(b64));
    assert_ne!(
        derive_secret("pass phrase one"),
        derive_secret("pass phrase two")
    );
}
