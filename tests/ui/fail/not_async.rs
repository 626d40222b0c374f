use cashews::cache;

#[cache(ttl = "1h")]
fn sync_fn(id: u64) -> u64 {
    id
}

fn main() {}
