"""The peer half of benches/disk.rs: Python diskcache's FanoutCache (8 shards)
doing the same get / set / delete of the same bytes. Prints one JSON object
of mean nanoseconds per operation."""
import json
import sys
import tempfile
import time

import diskcache


def mean_ns(op, n):
    start = time.perf_counter_ns()
    for i in range(n):
        op(i)
    return (time.perf_counter_ns() - start) / n


def main():
    value_len, keys, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    value = b"v" * value_len
    with tempfile.TemporaryDirectory() as directory:
        cache = diskcache.FanoutCache(directory, shards=8, timeout=10)
        for i in range(keys):
            cache.set(f"key:{i}", value)
        result = {
            "get": mean_ns(lambda i: cache.get(f"key:{i % keys}"), n),
            "set": mean_ns(lambda i: cache.set(f"key:{i % keys}", value), n),
            "delete": mean_ns(lambda i: cache.delete(f"key:{i % keys}"), min(n, keys)),
        }
        cache.close()
    print(json.dumps(result))


main()
