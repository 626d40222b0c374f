use cashews::cache;

#[cache(ttl = "1h", key = "user:{user_id}")]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
