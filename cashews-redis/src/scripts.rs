//! Lua scripts for the commands Redis has no single primitive for.

use std::sync::LazyLock;

use redis::Script;

/// The error code a script replies when the key holds something else than
/// what the command works on (Redis's own code for the same condition).
pub const WRONG_TYPE: &str = "WRONGTYPE";

/// The error code a script replies when a counter would leave `i64`.
pub const OVERFLOW: &str = "OVERFLOW";

/// `incr`: INCRBY, with the expiry applied only when this call creates the
/// key. Replies `WRONGTYPE` for a key that is not an integer counter and
/// `OVERFLOW` when the sum leaves `i64`, so errors are told apart by code,
/// never by message text.
pub const INCR_SOURCE: &str = r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'string' then
  return redis.error_reply('WRONGTYPE the key is not a counter')
end
local current = redis.call('GET', KEYS[1])
if current and not (current == '0' or (string.match(current, '^-?[1-9]%d*$') and #current <= 20)) then
  return redis.error_reply('WRONGTYPE the key is not an integer counter')
end
local value = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(value) == 'table' and value.err then
  return redis.error_reply('OVERFLOW the counter would overflow')
end
if not current and tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
";

/// [`INCR_SOURCE`] as a script (EVALSHA, loaded on first use).
pub static INCR: LazyLock<Script> = LazyLock::new(|| Script::new(INCR_SOURCE));

/// `unlock`: delete only if the key holds the token.
pub static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// `slice_incr`: a sliding window on a sorted set of unique members scored
/// by unix seconds (Python cashews' layout); the window is `[start, end]`
/// (ARGV 1–2), older members are dropped, a new one (ARGV 5) is scored
/// ARGV 6.
pub static SLICE_INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local count = redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[2])
if count < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[6], ARGV[5])
  count = count + 1
  if tonumber(ARGV[4]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
  end
end
return count
",
    )
});

/// `set_add`: SADD, with a TTL that only grows (a new set takes it, a set
/// without TTL keeps none, and members added without one make it persistent).
pub static SET_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local existed = redis.call('EXISTS', KEYS[1]) == 1
local ttl = redis.call('PTTL', KEYS[1])
local added = redis.call('SADD', KEYS[1], unpack(ARGV, 2))
local ms = tonumber(ARGV[1])
if ms > 0 then
  if not existed then
    redis.call('PEXPIRE', KEYS[1], ms)
  elseif ttl >= 0 and ttl < ms then
    redis.call('PEXPIRE', KEYS[1], ms)
  end
elseif existed then
  redis.call('PERSIST', KEYS[1])
end
return added
",
    )
});
