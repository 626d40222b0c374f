"""The Python half of tests/python.rs: a Python cashews service on the same
Redis as the Rust side. Reads one JSON request per line on stdin, answers one
JSON line on stdout. Values are named samples (SAMPLES), so both sides compare
against the same data without sending Python values over the pipe.

Usage: python cashews_peer.py <cashews setup url>
"""
import asyncio
import enum
import json
import sys

from cashews import Cache
from cashews.exceptions import RateLimitError
from cashews.formatter import default_format


class Tier(enum.StrEnum):
    GOLD = "gold"
    SILVER = "silver"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


SAMPLES = {
    "none": None,
    "true": True,
    "int": 42,
    "negative": -7,
    "big": 2**70,
    "float": 2.5,
    "str": "héllo wörld",
    "empty_str": "",
    "bytes": b"\x00\x01binary\xff",
    "list": [1, 2, 3],
    "tuple": (1, "a"),
    "set": {1, 2, 3},
    "user": {"id": 7, "name": "ann", "tags": ["a", "b"], "email": None},
    "users": [
        {"id": 1, "name": "a", "tags": [], "email": "a@example.com"},
        {"id": 2, "name": "b", "tags": ["x"], "email": None},
    ],
    "map": {"a": 1.5, "b": -2.0},
}

MISSING = object()


def expected(name, json_pickle):
    value = SAMPLES[name]
    if json_pickle:
        # What cashews' JSON pickler gives back: tuples become lists.
        return json.loads(json.dumps(value))
    return value


def arg(value):
    """A template argument sent as JSON (enums and odd floats tagged)."""
    if isinstance(value, dict) and "$enum" in value:
        return {"Tier": Tier, "Level": Level}[value["$enum"]][value["name"]]
    if isinstance(value, dict) and "$float" in value:
        return float(value["$float"])
    return value


async def main(url):
    json_pickle = "pickle_type=json" in url
    cache = Cache()
    cache.setup(url)

    @cache.rate_limit(limit=10, period=60, key="api:{user}")
    async def fixed(user):
        return True

    @cache.slice_rate_limit(limit=10, period=60, key="api:{user}")
    async def sliding(user):
        return True

    @cache(ttl="1h", key="profile:{uid}:{active}:{score}:{region}:{note}:{tier}:{level}")
    async def profile(uid, active, score, region, note=None, tier=Tier.GOLD, level=Level.LOW):
        return {"uid": uid, "source": "python"}

    async def handle(request):
        op = request["op"]
        if op == "set":
            await cache.set(request["key"], SAMPLES[request["sample"]], expire=600)
            return {"ok": True}
        if op == "get":
            value = await cache.get(request["key"], default=MISSING)
            if value is MISSING:
                return {"found": False}
            want = expected(request["sample"], json_pickle)
            return {
                "found": True,
                "equal": value == want and type(value) is type(want),
                "repr": repr(value),
            }
        if op == "incr":
            return {"value": await cache.incr(request["key"])}
        if op == "get_int":
            return {"value": await cache.get(request["key"])}
        if op == "limit":
            limited = fixed if request["kind"] == "fixed" else sliding
            allowed = 0
            for _ in range(request["calls"]):
                try:
                    await limited(request["user"])
                    allowed += 1
                except RateLimitError:
                    pass
            return {"allowed": allowed}
        if op == "set_lock":
            return {"taken": await cache.set_lock(request["key"], "python", 30)}
        if op == "is_locked":
            return {"locked": await cache.is_locked(request["key"])}
        if op == "unlock":
            return {"released": bool(await cache.unlock(request["key"], "python"))}
        if op == "render":
            kwargs = {name: arg(value) for name, value in request["kwargs"].items()}
            return {"key": default_format(request["template"], **kwargs)}
        if op == "profile":
            args = [arg(value) for value in request["args"]]
            return {"value": await profile(*args)}
        raise ValueError(f"unknown op {op!r}")

    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = await handle(request)
        except Exception as error:  # reported to the Rust side, which fails the test
            answer = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
