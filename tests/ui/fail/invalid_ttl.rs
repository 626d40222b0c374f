use cashews::cache;

#[cache(ttl = "3 fortnights")]
async fn f(id: u64) -> u64 {
    id
}

#[cache(ttl = 0)]
async fn g(id: u64) -> u64 {
    id
}

#[cache(ttl = "P4M")]
async fn h(id: u64) -> u64 {
    id
}

#[cache(ttl = "1.5:30")]
async fn i(id: u64) -> u64 {
    id
}

fn main() {}
