//! What a request asks of the cache: `Cache-Control`, `Clear-Site-Data`,
//! `If-None-Match`; and what a response allows.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap};

/// The request's `Cache-Control` directives the layer honours.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestDirectives {
    /// `no-cache`: do not answer from the cache (store the fresh answer).
    pub no_cache: bool,
    /// `no-store`: neither read nor write the cache.
    pub no_store: bool,
    /// `max-age=N`: accept a stored answer at most `N` seconds old, and
    /// store the fresh one for at most `N` seconds.
    pub max_age: Option<Duration>,
    /// `Clear-Site-Data: "cache"`: delete what this request would read.
    pub clear: bool,
}

impl RequestDirectives {
    pub(crate) fn parse(headers: &HeaderMap) -> RequestDirectives {
        let mut out = RequestDirectives::default();
        for directive in list(headers, header::CACHE_CONTROL) {
            let (name, value) = match directive.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-cache") {
                out.no_cache = true;
            } else if name.eq_ignore_ascii_case("no-store") {
                out.no_store = true;
            } else if name.eq_ignore_ascii_case("max-age") {
                // An unparsable max-age is ignored, as HTTP caches do.
                if let Some(secs) = value.and_then(|v| v.parse::<u64>().ok()) {
                    let cap = Duration::from_secs(secs);
                    out.max_age = Some(out.max_age.map_or(cap, |m| m.min(cap)));
                }
            }
        }
        out.clear = list(headers, header::HeaderName::from_static("clear-site-data")).any(|v| {
            let v = v.trim_matches('"');
            v.eq_ignore_ascii_case("cache") || v == "*"
        });
        out
    }
}

/// The comma-separated items of every `name` header, trimmed; values that
/// are not text are skipped.
fn list(headers: &HeaderMap, name: header::HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Whether `If-None-Match` names `etag` (weak comparison, or `*`).
pub(crate) fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let etag = bare(etag);
    list(headers, header::IF_NONE_MATCH).any(|tag| tag == "*" || bare(tag) == etag)
}

/// The seconds of the response `Cache-Control` directive `name=N`, if any
/// (an unparsable value is ignored, as HTTP caches do).
fn directive_secs(headers: &HeaderMap, name: &str) -> Option<Duration> {
    list(headers, header::CACHE_CONTROL).find_map(|d| {
        let (n, v) = d.split_once('=')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

/// How long a response says it may be stored by a shared cache:
/// `s-maxage`, else `max-age`, else `Expires` (against `Date`, else `now`).
/// `None` when it does not say.
pub(crate) fn response_lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(lifetime) =
        directive_secs(headers, "s-maxage").or_else(|| directive_secs(headers, "max-age"))
    {
        return Some(lifetime);
    }
    let date = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| httpdate::parse_http_date(v.trim()))
    };
    match date(header::EXPIRES)? {
        // An invalid Expires means "already expired" (RFC 9111 5.3).
        Err(_) => Some(Duration::ZERO),
        Ok(expires) => {
            let base = date(header::DATE).and_then(Result::ok).unwrap_or(now);
            Some(expires.duration_since(base).unwrap_or(Duration::ZERO))
        }
    }
}

/// The RFC 5861 windows a response grants past its lifetime:
/// `stale-while-revalidate=N` and `stale-if-error=N`.
pub(crate) fn stale_windows(headers: &HeaderMap) -> (Option<Duration>, Option<Duration>) {
    (
        directive_secs(headers, "stale-while-revalidate"),
        directive_secs(headers, "stale-if-error"),
    )
}

/// Why a response is not stored, if it is not. `keyed` are the request
/// headers the key varies on: a `Vary` naming another header is not stored
/// (its variants would share one entry).
pub(crate) fn uncacheable(
    status: http::StatusCode,
    headers: &HeaderMap,
    keyed: &[header::HeaderName],
) -> Option<&'static str> {
    let status_ok = (status.is_success() && status != http::StatusCode::PARTIAL_CONTENT)
        || (status.is_redirection() && status != http::StatusCode::NOT_MODIFIED);
    if !status_ok {
        return Some("status");
    }
    if headers.contains_key(header::SET_COOKIE) {
        // A cookie is one client's: storing it would hand it to the next.
        return Some("set-cookie");
    }
    if list(headers, header::CACHE_CONTROL).any(|d| {
        let name = d.split('=').next().unwrap_or("").trim();
        name.eq_ignore_ascii_case("no-store")
            || name.eq_ignore_ascii_case("private")
            || name.eq_ignore_ascii_case("no-cache")
    }) {
        return Some("cache-control");
    }
    for varied in list(headers, header::VARY) {
        if varied == "*" {
            return Some("vary: *");
        }
        if !keyed
            .iter()
            .any(|k| k.as_str().eq_ignore_ascii_case(varied))
        {
            return Some("vary names a header the key does not include");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn request_directives() {
        let d = RequestDirectives::parse(&headers(&[
            ("cache-control", "No-Cache, max-age=30"),
            ("cache-control", "max-age=10"),
            ("clear-site-data", "\"cookies\", \"cache\""),
        ]));
        assert!(d.no_cache && !d.no_store && d.clear);
        assert_eq!(d.max_age, Some(Duration::from_secs(10)));
        let d = RequestDirectives::parse(&headers(&[("cache-control", "max-age=soon, no-store")]));
        assert_eq!((d.max_age, d.no_store, d.clear), (None, true, false));
        assert_eq!(
            RequestDirectives::parse(&HeaderMap::new()),
            RequestDirectives::default()
        );
    }

    #[test]
    fn if_none_match() {
        let h = headers(&[("if-none-match", "\"a\", W/\"b\"")]);
        assert!(none_match(&h, "\"b\""));
        assert!(none_match(&h, "\"a\""));
        assert!(!none_match(&h, "\"c\""));
        assert!(none_match(&headers(&[("if-none-match", "*")]), "\"x\""));
        assert!(!none_match(&HeaderMap::new(), "\"x\""));
    }

    #[test]
    fn what_is_not_stored() {
        use http::StatusCode as S;
        assert_eq!(uncacheable(S::OK, &HeaderMap::new(), &[]), None);
        assert_eq!(
            uncacheable(S::MOVED_PERMANENTLY, &HeaderMap::new(), &[]),
            None
        );
        for status in [
            S::NOT_FOUND,
            S::INTERNAL_SERVER_ERROR,
            S::PARTIAL_CONTENT,
            S::NOT_MODIFIED,
        ] {
            assert_eq!(uncacheable(status, &HeaderMap::new(), &[]), Some("status"));
        }
        assert!(uncacheable(S::OK, &headers(&[("set-cookie", "id=1")]), &[]).is_some());
        assert!(uncacheable(
            S::OK,
            &headers(&[("cache-control", "private, max-age=5")]),
            &[]
        )
        .is_some());
    }

    #[test]
    fn response_lifetimes() {
        let now = httpdate::parse_http_date("Sat, 28 Nov 2026 00:00:00 GMT").unwrap();
        let life = |h: &[(&'static str, &'static str)]| response_lifetime(&headers(h), now);
        assert_eq!(life(&[]), None);
        assert_eq!(
            life(&[("cache-control", "max-age=100, s-maxage=5")]),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            life(&[("cache-control", "public, max-age=100")]),
            Some(Duration::from_secs(100))
        );
        assert_eq!(
            life(&[("expires", "Sat, 28 Nov 2026 00:01:00 GMT")]),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            life(&[
                ("expires", "Sat, 28 Nov 2026 00:01:00 GMT"),
                ("date", "Sat, 28 Nov 2026 00:00:30 GMT")
            ]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(life(&[("expires", "0")]), Some(Duration::ZERO));
        assert_eq!(
            stale_windows(&headers(&[(
                "cache-control",
                "max-age=5, stale-while-revalidate=30, stale-if-error=\"600\""
            )])),
            (
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(600))
            )
        );
        assert_eq!(
            stale_windows(&headers(&[("cache-control", "stale-if-error=soon")])),
            (None, None)
        );
        assert_eq!(
            life(&[("cache-control", "max-age=100"), ("expires", "0")]),
            Some(Duration::from_secs(100))
        );
        assert!(uncacheable(http::StatusCode::OK, &headers(&[("vary", "*")]), &[]).is_some());
        assert!(uncacheable(
            http::StatusCode::OK,
            &headers(&[("cache-control", "no-cache")]),
            &[]
        )
        .is_some());
        let lang = [header::ACCEPT_LANGUAGE];
        assert!(
            uncacheable(http::StatusCode::OK, &headers(&[("vary", "Cookie")]), &lang).is_some()
        );
        assert_eq!(
            uncacheable(
                http::StatusCode::OK,
                &headers(&[("vary", "Accept-Language")]),
                &lang
            ),
            None
        );
    }
}
