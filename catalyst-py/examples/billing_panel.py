"""A billing panel's life cycle of a customer's game server, with Catalyst.

on purchase: an account and a server with the plan's limits; on non-payment: suspend; on
payment: unsuspend; on cancellation: delete. Works the same embedded or against a
catalyst-server:

    python billing_panel.py                                  # embedded, SQLite in ./billing-data
    python billing_panel.py http://127.0.0.1:3000 admin@catalyst.local <password>
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from typing import Any

import catalyst

PLAN = {"memory_mb": 1024, "disk_mb": 4096, "cpu_percent": 100}
GAME = {
    "name": "echo-game",
    "image": "busybox",
    "startup": 'echo Done; while read line; do echo "> $line"; done',
    "stop": {"type": "signal", "value": "SIGTERM"},
    "done_patterns": [{"type": "substring", "value": "Done"}],
}


async def wait_state(c: catalyst.Catalyst, server_id: str, state: str, seconds: float = 20) -> dict[str, Any]:
    for _ in range(int(seconds * 20)):
        server = await c.get_server(server_id)
        if server["state"] == state:
            return server
        await asyncio.sleep(0.05)
    raise RuntimeError(f"server {server_id} never became {state}")


async def on_purchase(c: catalyst.Catalyst, email: str, port: int) -> str:
    user = await c.create_user({"email": email, "username": email.split("@")[0], "password": "changeme-123"})
    nodes = (await c.list_nodes())["items"]
    templates = [t for t in (await c.list_templates())["items"] if t["name"] == GAME["name"]]
    template = templates[0] if templates else await c.create_template(GAME)
    server = await c.create_server(
        {
            "name": f"{user['username']}'s server",
            "owner_id": user["id"],
            "node_id": nodes[0]["id"],
            "template_id": template["id"],
            "limits": PLAN,
            "allocations": [{"ip": "127.0.0.1", "port": port}],
        }
    )
    await wait_state(c, server["id"], "stopped")
    await c.start(server["id"])
    await wait_state(c, server["id"], "running")
    return server["id"]


async def on_nonpayment(c: catalyst.Catalyst, server_id: str) -> None:
    await c.suspend(server_id)
    await wait_state(c, server_id, "suspended")


async def on_payment(c: catalyst.Catalyst, server_id: str) -> None:
    await c.unsuspend(server_id)
    await wait_state(c, server_id, "stopped")
    await c.start(server_id)
    await wait_state(c, server_id, "running")


async def on_cancellation(c: catalyst.Catalyst, server_id: str) -> None:
    await c.delete_server(server_id)


async def main() -> None:
    if len(sys.argv) == 4:
        c = await catalyst.Catalyst.login(sys.argv[1], sys.argv[2], sys.argv[3])
    else:
        data = tempfile.mkdtemp(prefix="billing-")
        c = await catalyst.Catalyst.embedded(f"sqlite:{data}/catalyst.db", data_dir=data, local_node="process")
    server_id = await on_purchase(c, "player@example.test", 25599)
    print("purchased:", server_id)
    await on_nonpayment(c, server_id)
    print("suspended for non-payment")
    await on_payment(c, server_id)
    print("paid: running again")
    await on_cancellation(c, server_id)
    print("cancelled: deleted")


if __name__ == "__main__":
    asyncio.run(main())
