#![deny(warnings)]

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

/// ISO 8601 and clock forms, checked at compile time like the others.
#[cache(ttl = "PT5M")]
async fn iso(id: u64) -> u64 {
    id
}

#[cache(ttl = "4 10:15:30.5")]
async fn clock(id: u64) -> u64 {
    id
}

/// Absolute expiry: a time of day (with an offset), a datetime, an
/// expression.
#[cache(expire_at = "06:00+02:00")]
async fn daily(id: u64) -> u64 {
    id
}

#[cache(expire_at = "2030-01-01T00:00:00Z")]
async fn until_2030(id: u64) -> u64 {
    id
}

#[cache(expire_at = std::time::SystemTime::now() + Duration::from_secs(60))]
async fn in_a_minute(id: u64) -> u64 {
    id
}

/// Retries on a method: `&self` and reference arguments are shared by the
/// attempts, owned ones cloned.
struct Client;

impl Client {
    #[cache(ttl = "1h", retry = 2, backoff = "50ms", max_backoff = "1s")]
    async fn fetch(&self, id: u64, name: &str, mut tries: Vec<u8>) -> Result<u64, ApiError> {
        let _ = (self, name);
        tries.push(1);
        Ok(id + tries.len() as u64)
    }
}

/// A plain function, and a plain method.
#[cache(ttl = "1h", key = "sync:{id}")]
fn sync_fn(id: u64) -> Result<u64, ApiError> {
    if id == 0 {
        return Err(ApiError);
    }
    Ok(id)
}

impl Client {
    #[cache(ttl = "1h")]
    fn sync_method(&self, id: u64) -> u64 {
        id
    }
}

/// A plain function with a TTL from its result, and one kept locally.
fn sync_ttl(out: &u64, id: &u64) -> Duration {
    Duration::from_secs(*out + *id + 1)
}

#[cache(ttl = sync_ttl)]
fn sync_result_ttl(id: u64) -> u64 {
    id
}

#[cache(ttl = "1h", local)]
fn sync_local(id: u64) -> std::sync::Arc<Client> {
    let _ = id;
    std::sync::Arc::new(Client)
}

/// A body of one expression compiles without "unnecessary braces".
#[cache(ttl = "1h")]
async fn one_expression(id: u64) -> u64 {
    id
}

/// A TTL from a const: an upper-case path is a value.
const PROFILE_TTL: Duration = Duration::from_secs(60);

#[cache(ttl = PROFILE_TTL)]
async fn const_ttl(id: u64) -> u64 {
    id
}

/// A TTL from a static, through a module path.
mod ttls {
    pub static DAY: &str = "1d";
}

#[cache(ttl = ttls::DAY)]
async fn static_ttl(id: u64) -> u64 {
    id
}

/// A TTL function of the result and the arguments: a lower-case path.
fn ttl_for(out: &u64, id: &u64) -> Duration {
    Duration::from_secs(*out + *id + 1)
}

#[cache(ttl = ttl_for)]
async fn computed_ttl(id: u64) -> u64 {
    id
}

/// A stacked cache over a refreshed early layer, on a method.
#[derive(Clone)]
struct Service;

impl Service {
    #[cache(ttl = "1h")]
    #[cache::early(ttl = "1h", early_ttl = "10m")]
    async fn early(&self, name: &str) -> String {
        name.to_owned()
    }
}

fn main() {
    let _ = (one_expression, const_ttl, static_ttl, computed_ttl, Service::early);
    let _ = (profile, profile_card, options, page);
}
