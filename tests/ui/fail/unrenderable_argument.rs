use cashews::cache;

struct Client;

#[cache(ttl = "1h")]
async fn f(client: &Client, id: u64) -> u64 {
    let _ = client;
    id
}

fn main() {}
