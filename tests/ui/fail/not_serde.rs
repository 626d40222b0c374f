use cashews::cache;

/// Not `Serialize`/`Deserialize`: cannot be stored.
struct Report {
    rows: u64,
}

#[cache(ttl = "1h")]
async fn report(id: u64) -> Report {
    Report { rows: id }
}

fn main() {}
