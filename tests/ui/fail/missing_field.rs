use cashews::cache;

struct User {
    id: u64,
}

#[cache(ttl = "1h", key = "user:{user.uid}")]
async fn f(user: &User) -> u64 {
    user.id
}

fn main() {}
