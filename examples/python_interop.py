"""The Python half of examples/python_interop.rs: a Python cashews service
on the same Redis. Run `python examples/python_interop.py` (cashews and redis
installed) before or after `cargo run --example python_interop --features
redis,python`; the second one hits what the first cached."""
import asyncio
import os

from cashews import cache
from cashews.exceptions import RateLimitError

redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# The Rust side: ?codec=cashews&secret=change-me&digestmod=sha256
cache.setup(redis, secret="change-me", digestmod="sha256")


@cache(ttl="1h", key="profile:{uid}")
async def profile(uid):
    return {"uid": uid, "name": "computed in Python", "tags": ["python"]}


@cache.rate_limit(limit=10, period="1m", key="api:{user}")
async def api_call(user):
    return True


async def main():
    print("profile(7) =", await profile(7))
    print("visits =", await cache.incr("visits"))
    try:
        allowed = await api_call("alice")
    except RateLimitError:
        allowed = False
    print("api call for alice allowed:", allowed)


if __name__ == "__main__":
    asyncio.run(main())
