use cashews::cache;

/// `#[cache]` works on a plain fn; a background refresh needs an async one.
#[cache(ttl = "1h")]
#[cache::early(ttl = "1h", early_ttl = "10m")]
fn sync_fn(id: u64) -> u64 {
    id
}

fn main() {}
