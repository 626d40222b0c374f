use cashews::cache;
use std::time::Duration;

struct User {
    id: u64,
}

#[derive(Debug)]
struct ApiError;

#[cache(ttl = "3h", key = "user:{user.id}")]
async fn profile(user: &User) -> Result<String, ApiError> {
    Ok(format!("{}", user.id))
}

#[cache(ttl = "3h", key = "user:<user.id>")]
async fn profile_card(user: &User) -> Option<u64> {
    Some(user.id)
}

#[cache(ttl = 90, prefix = "v2", condition = not_none, time_condition = "100ms", lock = true, protected = false)]
async fn options(a: u8, b: Option<&str>) -> Result<Option<u8>, ApiError> {
    let _ = b;
    Ok(Some(a))
}

#[cache(ttl = Duration::from_secs(5), tags = ["items", "page:{page}"])]
async fn page(page: u32) -> Vec<u32> {
    vec![page]
}

fn main() {}
