use cashews::cache;

#[cache(key = "k:{id}")]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
