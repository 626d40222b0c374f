use cashews::cache;

#[cache(ttl = "1h", key = "user:{name:hash(sha3)}")]
async fn f(name: &str) -> usize {
    name.len()
}

fn main() {}
