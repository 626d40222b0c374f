//! How the cache lays out what it stores, where a backend must know it:
//! tag bookkeeping keys, counters, lock tokens.

/// The prefix of every key the cache keeps for tags.
pub const TAGS_PREFIX: &str = "_tags:";

/// Whether `key` starts with `prefix` (a route's or a tracking prefix).
/// The empty prefix — most caches' only one — matches without comparing
/// bytes: on the hit path that comparison (a call into libc's `memcmp`)
/// cost more than the hash lookup.
#[inline]
pub fn has_prefix(key: &str, prefix: &str) -> bool {
    prefix.is_empty() || key.starts_with(prefix)
}

/// The set of keys carrying `tag`.
pub fn tag_key(tag: &str) -> String {
    format!("{TAGS_PREFIX}tag:{tag}")
}

/// The set of tags carried by `key`.
pub fn key_tags_key(key: &str) -> String {
    format!("{TAGS_PREFIX}key:{key}")
}

/// Whether `key` is tag bookkeeping itself (it carries no tags).
pub fn is_tags_key(key: &str) -> bool {
    key.starts_with(TAGS_PREFIX)
}

/// Parses the decimal text of a counter (`-12`, `40`).
pub fn parse_counter(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// 128 random bits from the operating system, as hex: unguessable, so no one
/// can release a lock they do not hold.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to time and address entropy (still unique).
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ (&bytes as *const _ as u128);
        bytes = seed.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
