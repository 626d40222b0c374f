//! Bloom filters kept in the backend's bits: `contains` may say yes for an
//! item never added (at the configured rate), never no for one that was.

use crate::cache::Cache;
use crate::error::Result;

/// A bloom filter at `bloom:{name}`.
#[derive(Debug, Clone)]
pub struct BloomFilter<'c> {
    cache: &'c Cache,
    key: String,
    bits: u64,
    hashes: u32,
}

impl<'c> BloomFilter<'c> {
    /// A filter for about `capacity` items with `false_positives` percent of
    /// false positives (e.g. `1.0`).
    pub fn new(cache: &'c Cache, name: &str, capacity: u64, false_positives: f64) -> Self {
        let p = (false_positives / 100.0).clamp(1e-9, 0.5);
        let n = capacity.max(1) as f64;
        let ln2 = std::f64::consts::LN_2;
        let bits = (-(n * p.ln()) / (ln2 * ln2)).ceil().max(8.0) as u64;
        let hashes = ((bits as f64 / n) * ln2).round().clamp(1.0, 30.0) as u32;
        BloomFilter {
            cache,
            key: format!("bloom:{name}:{bits}"),
            bits,
            hashes,
        }
    }

    /// The bit indexes of `item`: double hashing over a stable 64-bit FNV-1a
    /// (the same on every process and version).
    fn indexes(&self, item: &str) -> Vec<u64> {
        let h1 = fnv1a(item.as_bytes(), 0xcbf2_9ce4_8422_2325);
        let h2 = fnv1a(item.as_bytes(), 0x84222325cbf29ce4) | 1;
        let mut indexes: Vec<u64> = (0..self.hashes as u64)
            .map(|i| h1.wrapping_add(i.wrapping_mul(h2)) % self.bits)
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
    }

    /// Adds `item`.
    pub async fn add(&self, item: &str) -> Result<()> {
        self.cache
            .incr_bits(&self.key, &self.indexes(item), 1, 1)
            .await
            .map(drop)
    }

    /// Whether `item` may have been added (`false`: it certainly was not).
    pub async fn contains(&self, item: &str) -> Result<bool> {
        let bits = self
            .cache
            .get_bits(&self.key, &self.indexes(item), 1)
            .await?;
        Ok(bits.iter().all(|b| *b == 1))
    }
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Two bloom filters remembering a boolean function's answers: an item in
/// only one of them has that answer; otherwise the function is asked and
/// its answer recorded (`dual_bloom`).
#[derive(Debug, Clone)]
pub struct DualBloom<'c> {
    yes: BloomFilter<'c>,
    no: BloomFilter<'c>,
}

impl<'c> DualBloom<'c> {
    /// Filters `dual_bloom:{name}:true` and `:false` for about `capacity` items each.
    pub fn new(cache: &'c Cache, name: &str, capacity: u64, false_positives: f64) -> Self {
        DualBloom {
            yes: BloomFilter::new(
                cache,
                &format!("dual:{name}:true"),
                capacity,
                false_positives,
            ),
            no: BloomFilter::new(
                cache,
                &format!("dual:{name}:false"),
                capacity,
                false_positives,
            ),
        }
    }

    /// The recorded answer for `item`, or `ask`'s (then recorded).
    pub async fn run(&self, item: &str, ask: impl std::future::Future<Output = bool>) -> bool {
        let yes = self.yes.contains(item).await.unwrap_or(false);
        let no = self.no.contains(item).await.unwrap_or(false);
        match (yes, no) {
            (true, false) => true,
            (false, true) => false,
            _ => {
                let answer = ask.await;
                let filter = if answer { &self.yes } else { &self.no };
                if let Err(error) = filter.add(item).await {
                    tracing::warn!(item, %error, "cannot record a bloom answer");
                }
                answer
            }
        }
    }
}
