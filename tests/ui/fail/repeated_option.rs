use cashews::cache;

#[cache(ttl = "1h", key = "a:{id}", key = "b:{id}")]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
