//! Shared test helpers: a harness around a cache under test.
#![allow(dead_code)]

pub mod conformance;

use std::time::Duration;

use cashews::{Cache, Clock};

/// A cache under test and a way to let time pass for it.
pub struct Harness {
    pub cache: Cache,
    paused: bool,
}

impl Harness {
    /// A `mem://` cache on tokio's clock: call from a test with paused time.
    pub fn memory(url: &str) -> Harness {
        let cache = Cache::with_clock(Clock::tokio());
        cache.setup(url).expect("valid url");
        Harness {
            cache,
            paused: true,
        }
    }

    /// Lets `d` pass: instantly under paused time, by sleeping otherwise.
    pub async fn advance(&self, d: Duration) {
        if self.paused {
            tokio::time::advance(d).await;
        } else {
            tokio::time::sleep(d).await;
        }
    }
}

/// Generates one `#[test]` per conformance case for a backend.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ident, [$attr:meta], $make:expr) => {
        mod $backend {
            use super::*;
            $crate::conformance_suite!(@cases [$attr], $make;
                round_trip_values, set_exist_matrix, set_without_expire_drops_ttl, get_expire_states,
                values_expire, get_many_is_aligned, set_many_with_expire, incr_semantics,
                delete_and_exists, glob_special_characters_are_literal, get_match_decodes_and_skips,
                expire_command, ping_clear_count, get_size, lock_tokens, lock_guard_waits_and_expires,
                bits, slice_incr_window, sets, wrong_types, returned_values_are_copies);
        }
    };
    (@cases [$attr:meta], $make:expr; $($case:ident),*) => {
        $(
            #[$attr]
            async fn $case() {
                let harness = $make;
                support::conformance::$case(&harness).await;
            }
        )*
    };
}
