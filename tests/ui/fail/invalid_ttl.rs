use cashews::cache;

#[cache(ttl = "3 fortnights")]
async fn f(id: u64) -> u64 {
    id
}

#[cache(ttl = 0)]
async fn g(id: u64) -> u64 {
    id
}

fn main() {}
