//! A response as stored in the cache, and the responses built from it.

use std::time::Duration;

use axum_core::body::Body;
use bytes::Bytes;
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

/// A stored response: status, headers, body, its ETag, and when it was
/// stored for how long (to answer `Age` and the remaining `max-age`).
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
}

impl Stored {
    /// Stores `parts` and `body`, stamped `now_ms`; the ETag is the
    /// response's own if it has one, else a hash of the body.
    pub(crate) fn new(
        parts: &http::response::Parts,
        body: Bytes,
        now_ms: u64,
        ttl: Option<Duration>,
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
            ttl_ms: ttl.map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64),
        }
    }

    /// How old the stored response is at `now_ms`.
    pub(crate) fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.stored_at_ms))
    }

    /// How long it stays stored after `now_ms` (`None`: no expiry).
    /// Whether the response's own lifetime has passed.
    pub(crate) fn expired(&self, now_ms: u64) -> bool {
        self.remaining(now_ms).is_some_and(|r| r.is_zero())
    }

    /// The stored body's length.
    pub(crate) fn body_len(&self) -> usize {
        self.body.len()
    }

    fn remaining(&self, now_ms: u64) -> Option<Duration> {
        self.ttl_ms.map(|ttl| {
            Duration::from_millis(ttl.saturating_sub(now_ms.saturating_sub(self.stored_at_ms)))
        })
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

    fn parts(headers: &[(&'static str, &'static str)]) -> http::response::Parts {
        let mut builder = Response::builder().status(200);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn etag_is_the_response_s_own_or_a_body_hash() {
        let stored = Stored::new(&parts(&[]), Bytes::from_static(b"hello"), 0, None);
        assert_eq!(stored.etag.len(), 34);
        assert_eq!(
            stored.etag,
            Stored::new(&parts(&[]), Bytes::from_static(b"hello"), 9, None).etag
        );
        assert_ne!(
            stored.etag,
            Stored::new(&parts(&[]), Bytes::from_static(b"hellO"), 0, None).etag
        );
        let own = Stored::new(
            &parts(&[("etag", "\"v1\"")]),
            Bytes::from_static(b"hello"),
            0,
            None,
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
        );
        let hit = stored.response(21_500, true);
        let h = hit.headers();
        assert_eq!(h["age"], "20");
        assert_eq!(h["cache-control"], "public, s-maxage=60", "never rewritten");
        assert!(!stored.expired(60_999) && stored.expired(61_000));
        assert_eq!(h["content-type"], "text/plain");
        assert!(!h.contains_key("connection"));
        let miss = stored.response(1_000, false);
        assert!(!miss.headers().contains_key("age"));
        assert_eq!(miss.headers()["etag"], stored.etag.as_str());
        let not_modified = stored.not_modified(2_000);
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn invalid_stored_headers_are_skipped() {
        let mut stored = Stored::new(&parts(&[]), Bytes::from_static(b"x"), 0, None);
        stored.headers.push(("bad header".into(), b"v".to_vec()));
        stored.headers.push(("x-ok".into(), b"bad\nvalue".to_vec()));
        stored.status = 1000;
        let response = stored.response(0, true);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!response.headers().contains_key("x-ok"));
    }
}
