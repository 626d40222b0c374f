use cashews::cache;

#[cache(ttl = "1h", ttl_seconds = 5)]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
