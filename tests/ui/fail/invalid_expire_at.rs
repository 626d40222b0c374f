use cashews::cache;

#[cache(expire_at = "25:00")]
async fn f(id: u64) -> u64 {
    id
}

#[cache(ttl = "1h", expire_at = "00:00")]
async fn g(id: u64) -> u64 {
    id
}

fn main() {}
