use cashews::cache;

/// Nothing here fails, so nothing can be retried.
#[cache(ttl = "1h", retry = 3)]
async fn count(id: u64) -> u64 {
    id
}

/// A pace without retries.
#[cache(ttl = "1h", backoff = "1s")]
async fn paced(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
