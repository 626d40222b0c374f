use cashews::cache;

/// `#[cache]` works on a plain fn; the strategies stacked on it do not yet.
#[cache(ttl = "1h")]
#[cache::locked(ttl = "10s")]
fn sync_fn(id: u64) -> u64 {
    id
}

fn main() {}
