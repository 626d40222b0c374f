use cashews::cache;

#[cache(ttl = "1h", key = "user:{id")]
async fn f(id: u64) -> u64 {
    id
}

#[cache(ttl = "1h", key = "user:id}")]
async fn g(id: u64) -> u64 {
    id
}

fn main() {}
