"""The same without asyncio: ``SyncClient`` for scripts and WSGI apps.

    REDIS_URL=redis://localhost:6379/0 .venv/bin/python examples/python/sync_producer.py
"""

from __future__ import annotations

import os

from dispatcher.client import SyncClient

with SyncClient(os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
                os.environ.get("DISPATCHER_NAMESPACE", "dispatcher")) as client:
    sent = client.enqueue([{"id": "crm-pysync-2001", "to": "+14155550100",
                            "campaign": "autumn"}])
    print("already known: not dialled again" if sent.duplicates else "pushed")
    client.pause("autumn")   # no new dial for its jobs, on every worker
    client.resume("autumn")
    if not sent.duplicates:  # a known id gets no new result: nothing to wait for
        print(client.wait("crm-pysync-2001", timeout=300)["outcome"])
