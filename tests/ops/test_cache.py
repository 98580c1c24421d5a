"""The Redis cache shares one pool and one client per process, from any thread."""

from __future__ import annotations

import threading

from django.core.cache import cache


def test_cache_reads_share_one_client_and_pool_across_threads():
    cache.set("shared-client", "yes", 30)
    seen = []

    def read() -> None:
        seen.append((cache.get("shared-client"), cache._cache.get_client()))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    read()
    assert {value for value, _ in seen} == {"yes"}
    clients = {id(client) for _, client in seen}
    assert len(clients) == 1
    assert seen[0][1].connection_pool is cache._cache._get_connection_pool(False)
