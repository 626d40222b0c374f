use cashews::cache;

#[cache(ttl = "1h", key = "user:{name:lowercase}")]
async fn f(name: &str) -> usize {
    name.len()
}

fn main() {}
