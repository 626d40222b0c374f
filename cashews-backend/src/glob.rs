//! Glob patterns for `scan`, `get_match` and `delete_match`, with Redis' rules
//! so every backend matches the same keys.
//!
//! Special: `*` (any run of bytes), `?` (one byte), `[abc]`, `[a-z]`, `[^a]` /
//! `[!a]` (classes) and `\x` (a literal `x`). Every other byte — `.`, `+`,
//! `(`, `$`, `:` ... — matches itself. An unclosed `[` is a literal `[`.

/// Whether `key` matches the glob `pattern`.
pub fn matches(pattern: &str, key: &str) -> bool {
    let (p, k) = (pattern.as_bytes(), key.as_bytes());
    let (mut pi, mut ki) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, key index).
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        if pi < p.len() {
            match step(p, pi, k[ki]) {
                Step::Star => {
                    star = Some((pi + 1, ki));
                    pi += 1;
                    continue;
                }
                Step::Match(next) => {
                    pi = next;
                    ki += 1;
                    continue;
                }
                Step::NoMatch => {}
            }
        }
        match star {
            Some((sp, sk)) => {
                pi = sp;
                ki = sk + 1;
                star = Some((sp, sk + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether `pattern` has any special character (else it names one key).
pub fn is_pattern(pattern: &str) -> bool {
    pattern
        .bytes()
        .any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
}

/// Escapes every special character of `text`, so it matches only itself
/// when embedded in a pattern.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

enum Step {
    Star,
    Match(usize),
    NoMatch,
}

fn step(p: &[u8], pi: usize, byte: u8) -> Step {
    match p[pi] {
        b'*' => Step::Star,
        b'?' => Step::Match(pi + 1),
        b'\\' if pi + 1 < p.len() => {
            if p[pi + 1] == byte {
                Step::Match(pi + 2)
            } else {
                Step::NoMatch
            }
        }
        b'[' => match class(p, pi, byte) {
            Some((true, end)) => Step::Match(end),
            Some((false, _)) => Step::NoMatch,
            None if byte == b'[' => Step::Match(pi + 1),
            None => Step::NoMatch,
        },
        c if c == byte => Step::Match(pi + 1),
        _ => Step::NoMatch,
    }
}

/// Evaluates the class starting at `p[start] == b'['` against `byte`:
/// `Some((matched, index after ']'))`, or `None` if it is never closed.
fn class(p: &[u8], start: usize, byte: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && (p[i] == b'^' || p[i] == b'!');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        let c = p[i];
        if c == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let (lo, mut next) = if c == b'\\' && i + 1 < p.len() {
            (p[i + 1], i + 2)
        } else {
            (c, i + 1)
        };
        let mut hi = lo;
        if next + 1 < p.len() && p[next] == b'-' && p[next + 1] != b']' {
            hi = p[next + 1];
            next += 2;
        }
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        if (lo..=hi).contains(&byte) {
            matched = true;
        }
        i = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("user:*", "user:1"));
        assert!(!matches("user:*", "users:1"));
        assert!(matches("*:1", "user:1"));
        assert!(matches("u*r:*1", "user:21"));
        assert!(matches("h?llo", "hello"));
        assert!(!matches("h?llo", "hllo"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
    }

    #[test]
    fn classes() {
        assert!(matches("h[ae]llo", "hallo"));
        assert!(!matches("h[ae]llo", "hillo"));
        assert!(matches("h[^e]llo", "hallo"));
        assert!(!matches("h[^e]llo", "hello"));
        assert!(matches("h[!e]llo", "hallo"));
        assert!(matches("k[a-c]", "kb"));
        assert!(!matches("k[a-c]", "kd"));
        assert!(matches("k[]]", "k]"));
        assert!(matches("k[", "k["), "unclosed class is literal");
    }

    #[test]
    fn regex_characters_are_literal() {
        for key in ["a.b", "a+b", "a(b)", "a$b", "a^b", "a|b", "a{1}"] {
            assert!(matches(key, key), "{key}");
        }
        assert!(!matches("a.b", "axb"));
        assert!(!matches("a+", "aa"));
        assert!(matches("price:$*", "price:$10"));
        assert!(!matches("price:$*", "price:10"));
    }

    #[test]
    fn escapes() {
        assert!(matches(r"a\*b", "a*b"));
        assert!(!matches(r"a\*b", "aXb"));
        let raw = "we*ird?[key]\\";
        let pattern = escape(raw);
        assert!(matches(&pattern, raw));
        assert!(!matches(&pattern, "weXird?[key]\\"));
        assert!(matches(&format!("{pattern}:*"), &format!("{raw}:1")));
        assert!(is_pattern("a*") && !is_pattern("a.b"));
    }
}
