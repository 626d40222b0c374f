//! Rendering values into cache keys: the [`KeyPart`] trait, the template
//! formatters, and the task-local [`key_context`](crate::scope::key_context).
//!
//! One rule for every backend and every call path:
//! - integers, `char` and strings render as themselves; `bool` as
//!   `true` / `false`; floats as Python's `str()` writes them (`1.0`,
//!   `0.1`, `1e+16`), so keys match Python cashews';
//! - `None` renders as nothing (the empty string), `Some(x)` as `x` — but
//!   `%x` when `x` renders empty or begins with `%`, so `Some("")` is not `None`;
//! - sequences (`Vec`, slices, arrays, sets kept sorted) join their items with
//!   `:`, each item [escaped](escape_from) first;
//! - maps render `key:value` pairs sorted by key, joined with `:`, keys and
//!   values escaped;
//! - references, `Box`, `Arc`, `Rc` and `Cow` render what they point to;
//! - any other type opts in by implementing [`KeyPart`], or through
//!   [`Display`] (the `#[cache]` macro picks `KeyPart` first).
//!
//! In a key, every rendered value (an argument of a default key, a
//! placeholder of a template) is escaped once more: `%` becomes `%25` and `:`
//! becomes `%3A`. A value therefore never contains the separator, so two
//! different argument lists never render the same key (`f("a:b", "c")` and
//! `f("a", "b:c")`, `["a:b"]` and `["a", "b"]`), and an invalidation pattern
//! built from one value (`tenant:{tenant}:*`) never matches the keys of
//! another. Values without `%` or `:` render unchanged.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::{Display, Write};
use std::rc::Rc;
use std::sync::Arc;

/// A value that can be written into a cache key. See the [module docs](self).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be rendered in a cache key",
    label = "this value is part of the cache key",
    note = "implement `cashews::key::KeyPart` or `Display` for it, write an explicit `key = \"...\"` template, or leave the argument out of the default key with `skip = [name]`"
)]
pub trait KeyPart {
    /// Appends the key form of `self` to `out`.
    fn write_key(&self, out: &mut String);
}

macro_rules! display_key_parts {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            #[inline]
            fn write_key(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
display_key_parts!(i128, u128, char);

/// Floats render as Python's `str(float)` does (so keys are those Python
/// cashews renders): the shortest digits that read back the same, fixed
/// notation from 1e-4 up to 1e16 with at least one decimal (`1.0`, `0.001`),
/// scientific notation outside it (`1e+16`, `1.5e-05`), `inf`, `-inf`, `nan`.
macro_rules! float_key_parts {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            fn write_key(&self, out: &mut String) {
                let value = *self;
                if value.is_nan() {
                    out.push_str("nan");
                } else if value.is_infinite() {
                    out.push_str(if value < 0.0 { "-inf" } else { "inf" });
                } else {
                    // `{:e}`: the shortest round-trip digits, `d.ddde-x`.
                    write_python_float(out, &format!("{value:e}"));
                }
            }
        }
    )*};
}
float_key_parts!(f32, f64);

/// Lays out Rust's `{:e}` form of a finite float (`-1.25e-7`) as Python's
/// `repr` does.
fn write_python_float(out: &mut String, scientific: &str) {
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    out.push_str(sign);
    if (-4..16).contains(&exponent) {
        if exponent < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            out.push_str(&digits);
        } else {
            let point = exponent as usize + 1;
            if digits.len() <= point {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
}

impl KeyPart for bool {
    #[inline]
    fn write_key(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

/// Integers are written without the formatting machinery: keys are built on
/// every cached call.
macro_rules! integer_key_parts {
    ($($t:ty => $magnitude:expr),* $(,)?) => {$(
        impl KeyPart for $t {
            #[inline]
            #[allow(unused_comparisons)]
            fn write_key(&self, out: &mut String) {
                let value = *self;
                write_integer(out, $magnitude(value), value < 0);
            }
        }
    )*};
}
integer_key_parts!(
    i8 => |v: i8| v.unsigned_abs() as u64,
    i16 => |v: i16| v.unsigned_abs() as u64,
    i32 => |v: i32| v.unsigned_abs() as u64,
    i64 => |v: i64| v.unsigned_abs(),
    isize => |v: isize| v.unsigned_abs() as u64,
    u8 => |v: u8| v as u64,
    u16 => |v: u16| v as u64,
    u32 => |v: u32| v as u64,
    u64 => |v: u64| v,
    usize => |v: usize| v as u64,
);

#[inline]
fn write_integer(out: &mut String, mut magnitude: u64, negative: bool) {
    let mut digits = [0u8; 21];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        digits[at] = b'-';
    }
    // SAFETY: `digits[at..]` holds only ASCII digits and `-`, which are UTF-8.
    out.push_str(unsafe { std::str::from_utf8_unchecked(&digits[at..]) });
}

impl KeyPart for str {
    #[inline]
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl KeyPart for String {
    #[inline]
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl<T: KeyPart + ?Sized> KeyPart for &T {
    #[inline]
    fn write_key(&self, out: &mut String) {
        (**self).write_key(out)
    }
}

impl<T: KeyPart + ?Sized> KeyPart for &mut T {
    fn write_key(&self, out: &mut String) {
        (**self).write_key(out)
    }
}

macro_rules! pointer_key_parts {
    ($($p:ident),*) => {$(
        impl<T: KeyPart + ?Sized> KeyPart for $p<T> {
            fn write_key(&self, out: &mut String) {
                (**self).write_key(out)
            }
        }
    )*};
}
pointer_key_parts!(Box, Arc, Rc);

impl<T: KeyPart + ToOwned + ?Sized> KeyPart for Cow<'_, T> {
    fn write_key(&self, out: &mut String) {
        (**self).write_key(out)
    }
}

impl<T: KeyPart> KeyPart for Option<T> {
    fn write_key(&self, out: &mut String) {
        if let Some(value) = self {
            let start = out.len();
            value.write_key(out);
            // `None` is the only empty rendering; a `%` prefix marks the rest
            // (an escaped value never begins with a lone `%`).
            if out.len() == start || out.as_bytes()[start] == b'%' {
                out.insert(start, '%');
            }
        }
    }
}

/// Escapes what `out` holds from byte `start` on so that it contains no `:`
/// (the separator of key parts): `%` becomes `%25` and `:` becomes `%3A`.
/// Text without either is left as it is. A [`KeyPart`] of a type made of
/// several values writes each one and escapes it before writing the next
/// separator, as sequences do.
#[inline]
pub fn escape_from(out: &mut String, start: usize) {
    let Some(first) = out.as_bytes()[start..]
        .iter()
        .position(|b| matches!(b, b':' | b'%'))
    else {
        return;
    };
    let tail = out.split_off(start + first);
    for c in tail.chars() {
        match c {
            ':' => out.push_str("%3A"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
}

/// Writes `part` escaped (see [`escape_from`]).
fn write_escaped<T: KeyPart + ?Sized>(part: &T, out: &mut String) {
    let start = out.len();
    part.write_key(out);
    escape_from(out, start);
}

fn join<'a, T: KeyPart + 'a>(items: impl IntoIterator<Item = &'a T>, out: &mut String) {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        write_escaped(item, out);
    }
}

impl<T: KeyPart> KeyPart for [T] {
    fn write_key(&self, out: &mut String) {
        join(self, out)
    }
}

impl<T: KeyPart, const N: usize> KeyPart for [T; N] {
    fn write_key(&self, out: &mut String) {
        join(self, out)
    }
}

impl<T: KeyPart> KeyPart for Vec<T> {
    fn write_key(&self, out: &mut String) {
        join(self, out)
    }
}

impl<T: KeyPart> KeyPart for BTreeSet<T> {
    fn write_key(&self, out: &mut String) {
        join(self, out)
    }
}

impl<T: KeyPart + Ord, S> KeyPart for HashSet<T, S> {
    fn write_key(&self, out: &mut String) {
        let mut items: Vec<&T> = self.iter().collect();
        items.sort();
        join(items, out)
    }
}

fn join_pairs<'a, K: KeyPart + 'a, V: KeyPart + 'a>(
    pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    out: &mut String,
) {
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        write_escaped(k, out);
        out.push(':');
        write_escaped(v, out);
    }
}

impl<K: KeyPart, V: KeyPart> KeyPart for BTreeMap<K, V> {
    fn write_key(&self, out: &mut String) {
        join_pairs(self, out)
    }
}

impl<K: KeyPart + Ord, V: KeyPart, S> KeyPart for HashMap<K, V, S> {
    fn write_key(&self, out: &mut String) {
        let mut pairs: Vec<(&K, &V)> = self.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        join_pairs(pairs, out)
    }
}

thread_local! {
    static KEY_BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs `f` with a cleared, reused key buffer, so rendering the key of a
/// cache hit allocates nothing. Re-entrant calls get a fresh buffer.
#[doc(hidden)]
#[inline]
pub fn with_key_buffer<R>(f: impl FnOnce(&mut String) -> R) -> R {
    KEY_BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            f(&mut buffer)
        }
        Err(_) => f(&mut String::with_capacity(64)),
    })
}

/// Renders a value to its key form.
pub fn render<T: KeyPart + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    value.write_key(&mut out);
    out
}

/// A value that renders through [`Display`], for use in keys.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be rendered in a cache key",
    label = "this value is part of the cache key",
    note = "implement `cashews::key::KeyPart` or `Display` for it, write an explicit `key = \"...\"` template, or leave the argument out of the default key with `skip = [name]`"
)]
pub trait DisplayKeyPart: Display {}

impl<T: Display + ?Sized> DisplayKeyPart for T {}

/// Picks [`KeyPart`] over [`Display`] when rendering a template value
/// (`(&&KeyArg(&v)).write_key_arg(out)`): used by generated code.
#[doc(hidden)]
#[derive(Debug)]
pub struct KeyArg<'a, T: ?Sized>(pub &'a T);

#[doc(hidden)]
pub trait ViaKeyPart {
    fn write_key_arg(&self, out: &mut String);
}

impl<T: KeyPart + ?Sized> ViaKeyPart for &KeyArg<'_, T> {
    #[inline]
    fn write_key_arg(&self, out: &mut String) {
        self.0.write_key(out)
    }
}

#[doc(hidden)]
pub trait ViaDisplay {
    type Value: ?Sized;
    fn write_key_arg(&self, out: &mut String)
    where
        Self::Value: DisplayKeyPart;
}

impl<T: ?Sized> ViaDisplay for KeyArg<'_, T> {
    type Value = T;
    #[inline]
    fn write_key_arg(&self, out: &mut String)
    where
        T: DisplayKeyPart,
    {
        let _ = write!(out, "{}", self.0);
    }
}

/// The formatters usable in templates as `{value:name(args)}`.
pub mod fmt {
    use super::*;

    /// `{x:lower}`
    pub fn lower(out: &mut String, rendered: &str) {
        out.extend(rendered.chars().flat_map(char::to_lowercase));
    }

    /// `{x:upper}`
    pub fn upper(out: &mut String, rendered: &str) {
        out.extend(rendered.chars().flat_map(char::to_uppercase));
    }

    /// `{x:len}`: the number of characters of the rendered value.
    pub fn len(out: &mut String, rendered: &str) {
        let _ = write!(out, "{}", rendered.chars().count());
    }

    /// `{x:hash(md5|sha1|sha256)}`: the hex digest of the rendered value.
    pub fn hash(out: &mut String, rendered: &str, algorithm: HashAlgorithm) {
        use sha2::Digest;
        let digest: Vec<u8> = match algorithm {
            HashAlgorithm::Md5 => md5::Md5::digest(rendered.as_bytes()).to_vec(),
            HashAlgorithm::Sha1 => sha1::Sha1::digest(rendered.as_bytes()).to_vec(),
            HashAlgorithm::Sha256 => sha2::Sha256::digest(rendered.as_bytes()).to_vec(),
        };
        for byte in digest {
            let _ = write!(out, "{byte:02x}");
        }
    }

    /// The digests of `{x:hash(...)}`.
    #[derive(Clone, Copy, Debug)]
    pub enum HashAlgorithm {
        /// `md5` (the default of `{x:hash}`).
        Md5,
        /// `sha1`
        Sha1,
        /// `sha256`
        Sha256,
    }

    /// `{token:jwt(claim)}`: a claim of a JWT's payload, **unverified** (use
    /// it to partition keys, never to authorise). Strings render without
    /// quotes; a missing claim or a malformed token renders as nothing.
    pub fn jwt(out: &mut String, token: &str, claim: &str) {
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        let Some(payload) = token.split('.').nth(1).and_then(base64url) else {
            return;
        };
        let Ok(payload) = std::str::from_utf8(&payload) else {
            return;
        };
        if let Some(value) = json::claim(payload, claim) {
            out.push_str(&value);
        }
    }

    fn base64url(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let (mut buffer, mut bits) = (0u32, 0u32);
        for byte in text.bytes().filter(|b| *b != b'=') {
            let value = match byte {
                b'A'..=b'Z' => byte - b'A',
                b'a'..=b'z' => byte - b'a' + 26,
                b'0'..=b'9' => byte - b'0' + 52,
                b'-' | b'+' => 62,
                b'_' | b'/' => 63,
                _ => return None,
            };
            buffer = (buffer << 6) | u32::from(value);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        Some(out)
    }

    /// Just enough JSON to read one top-level claim of a JWT payload
    /// (no dependency on a JSON crate for one formatter).
    mod json {
        /// The value of `name` in the top-level object `text`: a string
        /// unescaped, `null` as nothing, anything else as written.
        pub(super) fn claim(text: &str, name: &str) -> Option<String> {
            let mut p = Parser { text, at: 0 };
            p.expect(b'{')?;
            if p.peek() == Some(b'}') {
                return None;
            }
            loop {
                let key = p.string()?;
                p.expect(b':')?;
                let start = p.skip_ws();
                let value = p.value()?;
                if key == name {
                    return match value {
                        Value::Str(s) => Some(s),
                        Value::Raw if &p.text[start..p.at] == "null" => None,
                        Value::Raw => Some(p.text[start..p.at].to_owned()),
                    };
                }
                match p.next_byte()? {
                    b',' => continue,
                    _ => return None,
                }
            }
        }

        enum Value {
            Str(String),
            Raw,
        }

        /// Four hex digits of a `\\u` escape.
        fn hex4(chars: &mut std::str::CharIndices<'_>) -> Option<u32> {
            let hex: String = (0..4).filter_map(|_| chars.next().map(|c| c.1)).collect();
            if hex.len() != 4 {
                return None;
            }
            u32::from_str_radix(&hex, 16).ok()
        }

        struct Parser<'a> {
            text: &'a str,
            at: usize,
        }

        impl Parser<'_> {
            fn skip_ws(&mut self) -> usize {
                let bytes = self.text.as_bytes();
                while self.at < bytes.len() && bytes[self.at].is_ascii_whitespace() {
                    self.at += 1;
                }
                self.at
            }

            fn peek(&mut self) -> Option<u8> {
                self.skip_ws();
                self.text.as_bytes().get(self.at).copied()
            }

            fn next_byte(&mut self) -> Option<u8> {
                let b = self.peek()?;
                self.at += 1;
                Some(b)
            }

            fn expect(&mut self, byte: u8) -> Option<()> {
                (self.next_byte()? == byte).then_some(())
            }

            fn string(&mut self) -> Option<String> {
                self.expect(b'"')?;
                let mut out = String::new();
                let mut chars = self.text[self.at..].char_indices();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            self.at += i + 1;
                            return Some(out);
                        }
                        '\\' => match chars.next()?.1 {
                            '"' => out.push('"'),
                            '\\' => out.push('\\'),
                            '/' => out.push('/'),
                            'b' => out.push('\u{8}'),
                            'f' => out.push('\u{c}'),
                            'n' => out.push('\n'),
                            'r' => out.push('\r'),
                            't' => out.push('\t'),
                            'u' => {
                                let first = hex4(&mut chars)?;
                                let code = if (0xD800..0xDC00).contains(&first) {
                                    if chars.next()?.1 != '\\' || chars.next()?.1 != 'u' {
                                        return None;
                                    }
                                    let second = hex4(&mut chars)?;
                                    0x10000
                                        + ((first - 0xD800) << 10)
                                        + (second.checked_sub(0xDC00)?)
                                } else {
                                    first
                                };
                                out.push(char::from_u32(code)?);
                            }
                            _ => return None,
                        },
                        c if (c as u32) < 0x20 => return None,
                        c => out.push(c),
                    }
                }
                None
            }

            /// Skips a value; strings are returned unescaped.
            fn value(&mut self) -> Option<Value> {
                match self.peek()? {
                    b'"' => self.string().map(Value::Str),
                    b'{' | b'[' => {
                        let mut depth = 0usize;
                        loop {
                            match self.peek()? {
                                b'"' => {
                                    self.string()?;
                                    continue;
                                }
                                b'{' | b'[' => depth += 1,
                                b'}' | b']' => depth = depth.checked_sub(1)?,
                                _ => {}
                            }
                            self.at += 1;
                            if depth == 0 {
                                return Some(Value::Raw);
                            }
                        }
                    }
                    _ => {
                        let bytes = self.text.as_bytes();
                        let start = self.at;
                        while self.at < bytes.len()
                            && !matches!(bytes[self.at], b',' | b'}' | b']')
                            && !bytes[self.at].is_ascii_whitespace()
                        {
                            self.at += 1;
                        }
                        (self.at > start).then_some(Value::Raw)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg<T: ?Sized>(value: &T) -> KeyArg<'_, T> {
        KeyArg(value)
    }

    #[test]
    fn floats_render_as_python_writes_them() {
        // Python's repr() of the same floats.
        let python = "1.0 | 0.1 | -0.0 | 0.0 | 1e+16 | 1.5e+16 | 1e-05 | 1.5e-07 | 0.0001 | \
                      123456789012345.6 | 1234567890123456.8 | 2.5 | -3.25 | 1e+22 | 5e-324 | \
                      1.7976931348623157e+308 | 100.0 | 0.001";
        let values = [
            1.0,
            0.1,
            -0.0,
            0.0,
            1e16,
            1.5e16,
            1e-5,
            1.5e-7,
            0.0001,
            123456789012345.6,
            1234567890123456.8,
            2.5,
            -3.25,
            1e22,
            5e-324,
            f64::MAX,
            100.0,
            0.001,
        ];
        let rendered: Vec<String> = values.iter().map(render).collect();
        assert_eq!(
            rendered.join(" | "),
            python.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        assert_eq!(render(&f64::NAN), "nan");
        assert_eq!(render(&f64::NEG_INFINITY), "-inf");
        assert_eq!(render(&0.1f32), "0.1");
    }

    #[test]
    fn renders_by_the_one_rule() {
        assert_eq!(render(&true), "true");
        for n in [0i64, 7, -7, i64::MAX, i64::MIN] {
            assert_eq!(render(&n), n.to_string());
        }
        assert_eq!(render(&u64::MAX), u64::MAX.to_string());
        assert_eq!(render(&(-128i8)), "-128");
        assert_eq!(render(&None::<u8>), "");
        assert_eq!(render(&Some(5)), "5");
        assert_eq!(render(&vec!["a", "b"]), "a:b");
        assert_eq!(render(&[1, 2, 3]), "1:2:3");
        let map: HashMap<&str, u8> = [("b", 2), ("a", 1)].into();
        assert_eq!(render(&map), "a:1:b:2");
        let set: HashSet<u8> = [3, 1, 2].into();
        assert_eq!(render(&set), "1:2:3");
        assert_eq!(render(&Cow::Borrowed("x")), "x");
        assert_eq!(render(&Arc::new(-1.5)), "-1.5");
    }

    #[test]
    fn renderings_are_injective() {
        // Items holding the separator or the escape character are escaped.
        assert_eq!(render(&vec!["a:b"]), "a%3Ab");
        assert_eq!(render(&vec!["50%"]), "50%25");
        assert_ne!(render(&vec!["a:b"]), render(&vec!["a", "b"]));
        assert_ne!(
            render(&vec![vec!["a", "b"]]),
            render(&vec![vec!["a"], vec!["b"]])
        );
        let map: BTreeMap<&str, &str> = [("a:b", "c")].into();
        let other: BTreeMap<&str, &str> = [("a", "b:c")].into();
        assert_ne!(render(&map), render(&other));
        // None, Some("") and Some of a value beginning with `%` differ.
        let options = [None, Some(""), Some("%"), Some("%%"), Some("x")];
        let rendered: HashSet<String> = options.iter().map(render).collect();
        assert_eq!(rendered.len(), options.len(), "{rendered:?}");
        let mut escaped = String::from("k:");
        escape_from(&mut escaped, 2);
        assert_eq!(escaped, "k:");
        let mut escaped = String::from("k:a:%b");
        escape_from(&mut escaped, 2);
        assert_eq!(escaped, "k:a%3A%25b");
    }

    #[test]
    #[allow(clippy::needless_borrow)]
    fn key_part_wins_over_display() {
        struct Both;
        impl KeyPart for Both {
            fn write_key(&self, out: &mut String) {
                out.push_str("keypart");
            }
        }
        impl Display for Both {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("display")
            }
        }
        struct OnlyDisplay;
        impl Display for OnlyDisplay {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("display")
            }
        }
        let mut out = String::new();
        (&&arg(&Both)).write_key_arg(&mut out);
        out.push('|');
        (&&arg(&OnlyDisplay)).write_key_arg(&mut out);
        assert_eq!(out, "keypart|display");
    }

    #[test]
    fn formatters() {
        let mut out = String::new();
        fmt::lower(&mut out, "AbC");
        fmt::upper(&mut out, "dE");
        fmt::len(&mut out, "héllo");
        assert_eq!(out, "abcDE5");
        out.clear();
        fmt::hash(&mut out, "1", fmt::HashAlgorithm::Md5);
        assert_eq!(out, "c4ca4238a0b923820dcc509a6f75849b");
        out.clear();
        fmt::hash(&mut out, "abc", fmt::HashAlgorithm::Sha256);
        assert_eq!(
            out,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        out.clear();
        // {"sub":"user-1","n":7} as base64url without padding
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJuIjo3fQ.sig";
        fmt::jwt(&mut out, token, "sub");
        out.push('|');
        fmt::jwt(&mut out, token, "n");
        out.push('|');
        fmt::jwt(&mut out, token, "missing");
        fmt::jwt(&mut out, "not a token", "sub");
        fmt::jwt(&mut out, "a.!!!.c", "sub");
        assert_eq!(out, "user-1|7|");
    }

    #[test]
    fn jwt_claims_are_read_as_json_would() {
        use base64_encode as b64;
        let read = |payload: &str, claim: &str| {
            let mut out = String::new();
            fmt::jwt(&mut out, &format!("h.{}.s", b64(payload)), claim);
            out
        };
        let payload = r#" { "a" : "x\"y\\z\u00e9\ud83d\ude00" , "n": -1.5e3, "t": true,
            "z": null, "o": {"k": [1, "}"]}, "s": "last" } "#;
        assert_eq!(read(payload, "a"), "x\"y\\z\u{e9}\u{1f600}");
        assert_eq!(read(payload, "n"), "-1.5e3");
        assert_eq!(read(payload, "t"), "true");
        assert_eq!(read(payload, "z"), "");
        assert_eq!(read(payload, "o"), r#"{"k": [1, "}"]}"#);
        assert_eq!(read(payload, "s"), "last");
        assert_eq!(read(payload, "missing"), "");
        for broken in [
            "",
            "[]",
            "{",
            r#"{"a" 1}"#,
            r#"{"a": "\ud800"}"#,
            r#"{"a": "\u12"}"#,
            "{\"a\": \"\u{1}\"}",
        ] {
            assert_eq!(read(broken, "a"), "", "{broken:?}");
        }
    }

    /// base64url without padding, as JWTs encode.
    fn base64_encode(text: &str) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
