//! The vocabulary: GPT-2's byte ↔ printable character table and the raw
//! bytes of a token, as the ggml file stores them.

use super::GgmlError;

/// GPT-2's byte → printable character table: byte `b` is written as
/// `table[b]` in the vocabulary, so a token is a string of such characters.
/// Printable Latin-1 bytes stand for themselves; the other 68 bytes are
/// shifted to U+0100 and up, in order.
pub fn bytes_to_unicode() -> [char; 256] {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    for b in 0..256u32 {
        let cp = if printable(b) {
            b
        } else {
            shifted += 1;
            255 + shifted
        };
        table[b as usize] = char::from_u32(cp).unwrap_or('\0');
    }
    table
}

/// The raw bytes of one vocabulary entry (the inverse of [`bytes_to_unicode`]).
pub fn token_bytes(token: &str, table: &[char; 256]) -> Result<Vec<u8>, GgmlError> {
    token
        .chars()
        .map(|c| {
            table
                .iter()
                .position(|&t| t == c)
                .map(|b| b as u8)
                .ok_or_else(|| {
                    GgmlError::Vocabulary(format!(
                        "token {token:?} has {c:?}, which is no byte's character"
                    ))
                })
        })
        .collect()
}
