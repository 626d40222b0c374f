use cashews::cache;

/// Nothing here is an error to remember.
#[cache(ttl = "1h", negative_ttl = "30s")]
async fn count(id: u64) -> u64 {
    id
}

fn main() {}
