"""The peer half of benches/python_cashews.rs: Python cashews' get (a hit)
and set of the same small value under the same keys, on mem:// and on the
same Redis. Prints one JSON object of mean nanoseconds per operation."""
import asyncio
import json
import sys
import time

from cashews import Cache

KEYS = 1000
VALUE = {"id": 7, "name": "user number 7"}


async def mean_ns(op, n):
    start = time.perf_counter_ns()
    for i in range(n):
        await op(f"key:{i % KEYS}")
    return (time.perf_counter_ns() - start) / n


async def measure(url, n):
    cache = Cache()
    cache.setup(url)
    for i in range(KEYS):
        await cache.set(f"key:{i}", VALUE, expire=3600)
    result = {
        "get": await mean_ns(cache.get, n),
        "set": await mean_ns(lambda key: cache.set(key, VALUE, expire=3600), n),
    }
    await cache.close()
    return result


async def main():
    redis_url, n = sys.argv[1], int(sys.argv[2])
    mem = await measure("mem://", n)
    redis = await measure(redis_url, max(n // 10, 1000))
    print(json.dumps({"mem": mem, "redis": redis}))


asyncio.run(main())
