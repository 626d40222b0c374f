//! A response as stored in the cache, and the responses built from it.

use std::time::Duration;

use axum_core::body::Body;
use bytes::Bytes;
use cashews_core::Ttl;
use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Headers that describe one connection or one transfer, never stored.
const NOT_STORED: &[HeaderName] = &[
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::AGE,
];

/// What the cache holds under a request's key (`S` is `&Stored` when one
/// is written from a borrow).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry<S = Stored> {
    /// A stored response.
    Response(S),
    /// The last response was not storable by its own say (`no-store`,
    /// `Set-Cookie`, a route's override): requests for the key go to the
    /// handler at once instead of queueing behind each other, until one
    /// answers with a storable response, which replaces this marker
    /// (Varnish's "hit-for-miss").
    Pass,
}

/// A stored response: status, headers, body, its ETag, when it was stored
/// for how long (to answer `Age`), and how long past that it may still be
/// served stale (RFC 5861).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    /// Serialized as bytes (one copy), not as a sequence of numbers, and
    /// shared by every response built from the entry.
    body: Bytes,
    pub(crate) etag: String,
    stored_at_ms: u64,
    ttl_ms: Option<u64>,
    stale_while_revalidate_ms: u64,
    stale_if_error_ms: u64,
}

/// How long past its lifetime a response may be served stale.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Windows {
    /// Served at once while one background refresh runs.
    pub while_revalidate: Option<Duration>,
    /// Served when the handler fails (an error, a 5xx).
    pub if_error: Option<Duration>,
}

/// How a stored response may be used at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Within its lifetime.
    Fresh,
    /// Past it, within `stale-while-revalidate`: served, and refreshed.
    Revalidate,
    /// Past that, within `stale-if-error`: served only if the handler fails.
    IfError,
    /// Past every window.
    Dead,
}

fn millis(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| d.as_millis().min(u128::from(u64::MAX)) as u64)
}

impl Stored {
    /// Stores `parts` and `body`, stamped `now_ms`; the ETag is the
    /// response's own if it has one, else a hash of the body.
    pub(crate) fn new(
        parts: &http::response::Parts,
        body: Bytes,
        now_ms: u64,
        ttl: Option<Duration>,
        windows: Windows,
    ) -> Stored {
        let etag = match parts
            .headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
        {
            Some(etag) => etag.to_owned(),
            None => {
                let digest = Sha256::digest(&body);
                let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            }
        };
        Stored {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .filter(|(name, _)| !NOT_STORED.contains(name))
                .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                .collect(),
            body,
            etag,
            stored_at_ms: now_ms,
            ttl_ms: ttl.map(|d| millis(Some(d))),
            stale_while_revalidate_ms: millis(windows.while_revalidate),
            stale_if_error_ms: millis(windows.if_error),
        }
    }

    /// How the response may be used at `now_ms`.
    pub(crate) fn freshness(&self, now_ms: u64) -> Freshness {
        let Some(ttl) = self.ttl_ms else {
            return Freshness::Fresh;
        };
        let age = now_ms.saturating_sub(self.stored_at_ms);
        match age.checked_sub(ttl) {
            None => Freshness::Fresh,
            Some(past) if past < self.stale_while_revalidate_ms => Freshness::Revalidate,
            Some(past) if past < self.stale_if_error_ms => Freshness::IfError,
            Some(_) => Freshness::Dead,
        }
    }

    /// How long the backend keeps it: its lifetime and the longer stale
    /// window (`None`: not worth storing).
    pub(crate) fn backend_ttl(&self) -> Option<Ttl> {
        let Some(ttl) = self.ttl_ms else {
            return Some(Ttl::FOREVER);
        };
        let keep = ttl.saturating_add(self.stale_while_revalidate_ms.max(self.stale_if_error_ms));
        Ttl::new(Duration::from_millis(keep)).ok()
    }

    /// The `stale-while-revalidate` window (for the refresh's lock).
    pub(crate) fn revalidate_window(&self) -> Duration {
        Duration::from_millis(self.stale_while_revalidate_ms)
    }

    /// How old the stored response is at `now_ms`.
    pub(crate) fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.stored_at_ms))
    }

    /// The stored body's length.
    pub(crate) fn body_len(&self) -> usize {
        self.body.len()
    }

    /// The stored response, with `ETag`, and `Age` and `Cache-Control:
    /// max-age` when `hit` (answered from the cache).
    pub(crate) fn response(&self, now_ms: u64, hit: bool) -> Response<Body> {
        self.build(self.status(), Body::from(self.body.clone()), now_ms, hit)
    }

    /// `304 Not Modified` for a client that holds this response.
    pub(crate) fn not_modified(&self, now_ms: u64) -> Response<Body> {
        self.build(StatusCode::NOT_MODIFIED, Body::empty(), now_ms, true)
    }

    fn status(&self) -> StatusCode {
        // A stored status that is not a status (a tampered entry) is
        // answered as a server error.
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn build(&self, status: StatusCode, body: Body, now_ms: u64, hit: bool) -> Response<Body> {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            // Entries that are not valid headers are skipped, never a panic.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                if status == StatusCode::NOT_MODIFIED && name == header::CONTENT_LENGTH {
                    continue;
                }
                headers.append(name, value);
            }
        }
        if let Ok(etag) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, etag);
        }
        // The stored headers as the origin sent them (never a rewritten
        // Cache-Control), with the entry's Age.
        if hit {
            headers.insert(header::AGE, HeaderValue::from(self.age(now_ms).as_secs()));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Windows = Windows {
        while_revalidate: None,
        if_error: None,
    };

    fn parts(headers: &[(&'static str, &'static str)]) -> http::response::Parts {
        let mut builder = Response::builder().status(200);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn etag_is_the_response_s_own_or_a_body_hash() {
        let stored = Stored::new(&parts(&[]), Bytes::from_static(b"hello"), 0, None, W);
        assert_eq!(stored.etag.len(), 34);
        assert_eq!(
            stored.etag,
            Stored::new(&parts(&[]), Bytes::from_static(b"hello"), 9, None, W).etag
        );
        assert_ne!(
            stored.etag,
            Stored::new(&parts(&[]), Bytes::from_static(b"hellO"), 0, None, W).etag
        );
        let own = Stored::new(
            &parts(&[("etag", "\"v1\"")]),
            Bytes::from_static(b"hello"),
            0,
            None,
            W,
        );
        assert_eq!(own.etag, "\"v1\"");
    }

    #[test]
    fn hits_carry_age_and_the_origin_s_own_cache_control() {
        let stored = Stored::new(
            &parts(&[
                ("content-type", "text/plain"),
                ("connection", "keep-alive"),
                ("cache-control", "public, s-maxage=60"),
            ]),
            Bytes::from_static(b"body"),
            1_000,
            Some(Duration::from_secs(60)),
            W,
        );
        let hit = stored.response(21_500, true);
        let h = hit.headers();
        assert_eq!(h["age"], "20");
        assert_eq!(h["cache-control"], "public, s-maxage=60", "never rewritten");
        assert_eq!(stored.freshness(60_999), Freshness::Fresh);
        assert_eq!(stored.freshness(61_000), Freshness::Dead);
        assert_eq!(h["content-type"], "text/plain");
        assert!(!h.contains_key("connection"));
        let miss = stored.response(1_000, false);
        assert!(!miss.headers().contains_key("age"));
        assert_eq!(miss.headers()["etag"], stored.etag.as_str());
        let not_modified = stored.not_modified(2_000);
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn stale_windows_follow_the_lifetime() {
        let windows = Windows {
            while_revalidate: Some(Duration::from_secs(10)),
            if_error: Some(Duration::from_secs(100)),
        };
        let stored = Stored::new(
            &parts(&[]),
            Bytes::new(),
            1_000,
            Some(Duration::from_secs(60)),
            windows,
        );
        assert_eq!(stored.freshness(60_999), Freshness::Fresh);
        assert_eq!(stored.freshness(61_000), Freshness::Revalidate);
        assert_eq!(stored.freshness(70_999), Freshness::Revalidate);
        assert_eq!(stored.freshness(71_000), Freshness::IfError);
        assert_eq!(stored.freshness(160_999), Freshness::IfError);
        assert_eq!(stored.freshness(161_000), Freshness::Dead);
        assert_eq!(stored.backend_ttl(), Ttl::from_secs(160).ok());
        // Without a lifetime it never goes stale; a zero one is not kept.
        let forever = Stored::new(&parts(&[]), Bytes::new(), 0, None, windows);
        assert_eq!(forever.freshness(u64::MAX), Freshness::Fresh);
        assert_eq!(forever.backend_ttl(), Some(Ttl::FOREVER));
        let zero = Stored::new(&parts(&[]), Bytes::new(), 0, Some(Duration::ZERO), W);
        assert_eq!(zero.backend_ttl(), None);
    }

    #[test]
    fn invalid_stored_headers_are_skipped() {
        let mut stored = Stored::new(&parts(&[]), Bytes::from_static(b"x"), 0, None, W);
        stored.headers.push(("bad header".into(), b"v".to_vec()));
        stored.headers.push(("x-ok".into(), b"bad\nvalue".to_vec()));
        stored.status = 1000;
        let response = stored.response(0, true);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!response.headers().contains_key("x-ok"));
    }
}
