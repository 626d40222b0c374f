use cashews::cache;

fn ttl_for(_out: &usize, _name: &String) -> u64 {
    60
}

/// The body takes `name`; the TTL function reads it afterwards.
#[cache(ttl = ttl_for)]
async fn length(name: String) -> usize {
    let owned: String = name;
    owned.len()
}

fn main() {}
