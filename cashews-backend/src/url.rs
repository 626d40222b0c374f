//! Setup URLs: `scheme://[user:pass@]hosts[/path][?name=value&...]`.
//!
//! Every query parameter must be consumed by the cache (`secret`, `digestmod`,
//! `codec`) or by the backend's driver; a parameter nobody takes is an error
//! naming it and listing what is accepted. Values are percent-decoded; `+` is
//! a literal plus. Booleans accept `true/false/1/0/yes/no/on/off`.

use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

/// A parsed setup URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupUrl {
    /// The scheme, lower-cased (`mem`, `redis`, ...).
    pub scheme: String,
    /// `user:pass` before `@`, percent-decoded, if present.
    pub userinfo: Option<String>,
    /// The host list (`h1:p1,h2:p2`), possibly empty.
    pub hosts: String,
    /// The path after the hosts, without the leading `/`.
    pub path: String,
    /// The original text, for error messages (with any password hidden).
    pub display: String,
    params: Vec<(String, String)>,
}

impl SetupUrl {
    /// Parses `url`; see the [module docs](self).
    pub fn parse(url: &str) -> Result<SetupUrl> {
        let display = redact(url);
        let bad = |why: &str| Error::config(format!("setup url {display:?}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad("missing scheme, expected e.g. \"mem://\" or \"redis://host:6379/0\"")
        })?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(bad("invalid scheme"));
        }
        if rest.contains('#') {
            return Err(bad(
                "fragments (#...) are not allowed; percent-encode '#' as %23",
            ));
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(percent_decode(u).map_err(|e| bad(&e))?), h),
            None => (None, authority),
        };
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                bad(&format!(
                    "parameter {pair:?} has no value (expected {pair}=...)"
                ))
            })?;
            let name = percent_decode(name)
                .map_err(|e| bad(&e))?
                .to_ascii_lowercase();
            let value = percent_decode(value).map_err(|e| bad(&e))?;
            if name.is_empty() {
                return Err(bad("a parameter has an empty name"));
            }
            if params.iter().any(|(n, _)| *n == name) {
                return Err(bad(&format!("parameter {name:?} is given twice")));
            }
            params.push((name, value));
        }
        Ok(SetupUrl {
            scheme: scheme.to_ascii_lowercase(),
            userinfo,
            hosts: hosts.to_owned(),
            path: path.to_owned(),
            display,
            params,
        })
    }

    /// A configuration error about this URL: `setup url "<url>": message`
    /// (the URL shown with its secrets hidden).
    pub fn invalid(&self, message: impl std::fmt::Display) -> Error {
        Error::config(format!("setup url {:?}: {message}", self.display))
    }

    /// Parses `url` and reads it with `read` (a backend's reader of its
    /// URL), refusing any parameter `read` did not take: what a backend's
    /// typed configuration offers as `parse`.
    pub fn parse_with<T>(
        url: &str,
        read: impl FnOnce(&SetupUrl, &mut Params<'_>) -> Result<T>,
    ) -> Result<T> {
        let url = SetupUrl::parse(url)?;
        let mut params = url.params();
        let config = read(&url, &mut params)?;
        params.finish()?;
        Ok(config)
    }

    /// Fails unless the URL has neither hosts nor a path (schemes configured
    /// by parameters only); `example` shows the right form.
    pub fn parameters_only(&self, example: &str) -> Result<()> {
        if self.hosts.is_empty() && self.path.is_empty() {
            return Ok(());
        }
        Err(Error::config(format!(
            "setup url {:?}: {}:// takes no host or path, only parameters ({example})",
            self.display, self.scheme
        )))
    }

    /// The query parameters, to be consumed with [`Params`].
    pub fn params(&self) -> Params<'_> {
        Params {
            url: self,
            used: vec![false; self.params.len()],
            accepted: Vec::new(),
        }
    }
}

/// The query parameters of a [`SetupUrl`], taken one by one by whoever
/// understands them; [`Params::finish`] rejects the rest.
#[derive(Debug)]
pub struct Params<'u> {
    url: &'u SetupUrl,
    used: Vec<bool>,
    accepted: Vec<&'static str>,
}

impl<'u> Params<'u> {
    /// Takes the raw value of `name`, if given.
    pub fn take(&mut self, name: &'static str) -> Option<&'u str> {
        self.accepted.push(name);
        let i = self.url.params.iter().position(|(n, _)| n == name)?;
        self.used[i] = true;
        Some(self.url.params[i].1.as_str())
    }

    /// Takes `name` and converts it with `parse`, whose error says what is
    /// accepted (e.g. "a positive integer").
    pub fn take_with<T>(
        &mut self,
        name: &'static str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        let display = &self.url.display;
        match self.take(name) {
            None => Ok(None),
            Some(raw) => parse(raw).map(Some).ok_or_else(|| {
                Error::config(format!(
                    "setup url {display:?}: parameter {name}={raw:?} is invalid, expected {expected}"
                ))
            }),
        }
    }

    /// Takes a boolean (`true/false/1/0/yes/no/on/off`).
    pub fn bool(&mut self, name: &'static str) -> Result<Option<bool>> {
        self.take_with(name, "true/false/1/0/yes/no/on/off", parse_bool)
    }

    /// Takes a number of a `FromStr` type (e.g. `u64`).
    pub fn number<T: FromStr>(&mut self, name: &'static str, expected: &str) -> Result<Option<T>> {
        self.take_with(name, expected, |s| s.trim().parse().ok())
    }

    /// Takes a duration in the TTL syntax (`"500ms"`, `"2s"`, `"1"`); zero allowed.
    pub fn duration(&mut self, name: &'static str) -> Result<Option<Duration>> {
        self.take_with(name, "a duration such as 500ms, 2s or 1m", |s| {
            crate::ttl::parse_duration(s).ok()
        })
    }

    /// A duration parameter that must be more than zero (a timeout: zero
    /// would fail every command).
    pub fn positive_duration(&mut self, name: &'static str) -> Result<Option<Duration>> {
        self.take_with(name, "a duration above zero such as 500ms or 2s", |s| {
            crate::ttl::parse_duration(s).ok().filter(|d| !d.is_zero())
        })
    }

    /// Fails if a parameter was given that nobody took.
    pub fn finish(self) -> Result<()> {
        let unknown: Vec<&str> = self
            .url
            .params
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|((n, _), _)| n.as_str())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut accepted = self.accepted.clone();
        accepted.sort_unstable();
        accepted.dedup();
        Err(Error::config(format!(
            "setup url {:?}: unknown parameter{} {}; {} accepts: {}",
            self.url.display,
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", "),
            self.url.scheme,
            accepted.join(", ")
        )))
    }
}

/// Parses the boolean forms accepted in URLs.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses a byte size: `1000`, `64KiB`, `1.5GB`, `512mb`.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * scale;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("percent-encoding in {s:?} is not UTF-8"))
}

/// Hides a password and the `secret` parameter from a URL shown in errors.
fn redact(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let user = rest[..at].split(':').next().unwrap_or("");
            shown = format!("{scheme}://{user}:***@{}", &rest[at + 1..]);
        }
    }
    if let Some(q) = shown.find('?') {
        let (base, query) = shown.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((n, _)) if n.eq_ignore_ascii_case("secret") => format!("{n}=***"),
                _ => p.to_owned(),
            })
            .collect();
        shown = format!("{base}{}", query.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts() {
        let u = SetupUrl::parse("redis://me:p%40ss@h1:1,h2:2/3?Secret=a%2Bb&cluster=yes").unwrap();
        assert_eq!(u.scheme, "redis");
        assert_eq!(u.userinfo.as_deref(), Some("me:p@ss"));
        assert_eq!(u.hosts, "h1:1,h2:2");
        assert_eq!(u.path, "3");
        assert!(
            !u.display.contains("p%40ss") && !u.display.contains("a%2Bb"),
            "{}",
            u.display
        );
        let mut p = u.params();
        assert_eq!(p.take("secret"), Some("a+b"));
        assert_eq!(p.bool("cluster").unwrap(), Some(true));
        p.finish().unwrap();
    }

    #[test]
    fn unknown_and_invalid_parameters_are_named() {
        let u = SetupUrl::parse("mem://?size=10&colour=red").unwrap();
        let mut p = u.params();
        assert_eq!(p.number::<u64>("size", "an integer").unwrap(), Some(10));
        let e = p.finish().unwrap_err().to_string();
        assert!(e.contains("colour") && e.contains("size"), "{e}");

        let u = SetupUrl::parse("mem://?size=ten").unwrap();
        let e = u
            .params()
            .number::<u64>("size", "a positive integer")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("size") && e.contains("\"ten\"") && e.contains("positive integer"),
            "{e}"
        );
    }

    #[test]
    fn malformed_urls() {
        for bad in [
            "mem",
            "",
            "://",
            "m m://",
            "mem://?size",
            "mem://?=1",
            "mem://?a=1&a=2",
            "mem://?a=%zz",
            "mem://#x",
        ] {
            assert!(SetupUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("1.5kb"), Some(1500));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("12 parsecs"), None);
        assert_eq!(parse_bytes("-1"), None);
    }
}
