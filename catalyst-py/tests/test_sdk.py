"""The SDK in both modes: the billing-panel example, error classes, the sync facade, stubs."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import pathlib
import subprocess
import sys
import uuid

import pytest
from helpers import rest

import catalyst
import catalyst.sync

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
EGGS = pathlib.Path(__file__).resolve().parents[2] / "catalyst-core" / "tests" / "eggs"


def billing():
    spec = importlib.util.spec_from_file_location("billing_panel", EXAMPLES / "billing_panel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def exercise(c: catalyst.Catalyst, port: int) -> None:
    panel = billing()
    server_id = await panel.on_purchase(c, f"p{port}@example.test", port)
    server = await c.get_server(server_id)
    assert server["limits"]["memory_mb"] == 1024 and server["state"] == "running"
    # The console as an async iterator: the echo of a command arrives on it.
    console = await c.console(server_id)
    await c.send_command(server_id, "hello")

    async def echo() -> dict:
        async for line in console:
            if line["line"] == "> hello":
                return line
        raise AssertionError("the console ended")

    line = await asyncio.wait_for(echo(), 30)
    assert line["server_id"] == server_id and line["stream"] == "stdout"
    await console.aclose()
    with pytest.raises(StopAsyncIteration):
        await console.__anext__()
    # Resuming from a sequence number replays the stored lines after it, oldest first.
    for _ in range(100):
        if any(stored["seq"] == line["seq"] for stored in await c.logs(server_id)):
            break
        await asyncio.sleep(0.1)
    replay = await c.console(server_id, since=line["seq"] - 1)
    assert (await asyncio.wait_for(replay.__anext__(), 30))["seq"] == line["seq"]
    # Events: the suspension arrives as a state update.
    events = await c.events(server_id)
    await panel.on_nonpayment(c, server_id)

    async def suspended() -> dict:
        async for event in events:
            if event["type"] == "server_state_update" and event["to"] == "suspended":
                return event
        raise AssertionError("the events ended")

    assert (await asyncio.wait_for(suspended(), 30))["server_id"] == server_id
    with pytest.raises(catalyst.InvalidTransitionError) as refused:
        await c.start(server_id)
    assert refused.value.code == "invalid_transition"
    await panel.on_payment(c, server_id)
    await panel.on_cancellation(c, server_id)
    with pytest.raises(catalyst.NotFoundError) as gone:
        await c.get_server(server_id)
    assert gone.value.code == "not_found"
    assert isinstance(gone.value, catalyst.CatalystError)
    with pytest.raises(catalyst.InvalidInputError):
        await c.get_server("not-an-id")
    with pytest.raises(catalyst.InvalidInputError):
        await c.create_location({"name": 5})
    with pytest.raises(catalyst.NotFoundError):
        await c.get_server(str(uuid.uuid4()))
    with pytest.raises(catalyst.NotFoundError):
        await c.events(str(uuid.uuid4()))
    await eggs(c)
    await pools(c, port)


async def pools(c: catalyst.Catalyst, port: int) -> None:
    """A node's allocation pool: ranges in, who holds what, aliases, deleting free ones."""
    node = (await c.list_nodes())["items"][0]["id"]
    ports = [f"{port + 1000}-{port + 1002}", str(port + 1002)]
    assert await c.add_allocations(node, {"ip": "127.0.0.1", "ports": ports}) == 3
    pool = [a for a in (await c.list_allocations(node, limit=200))["items"] if a["port"] > port + 999]
    assert [a["port"] for a in pool] == [port + 1000, port + 1001, port + 1002]
    assert all(a["server_id"] is None for a in pool)
    named = await c.update_allocation(node, pool[0]["number"], {"alias": "play.example.test"})
    assert named["alias"] == "play.example.test" and named["port"] == port + 1000
    await c.delete_allocation(node, pool[0]["number"])
    with pytest.raises(catalyst.NotFoundError):
        await c.delete_allocation(node, pool[0]["number"])
    with pytest.raises(catalyst.InvalidInputError):
        await c.add_allocations(node, {"ip": "127.0.0.1", "ports": ["70000-1"]})


async def eggs(c: catalyst.Catalyst) -> None:
    """A real egg in (text, then bytes: the same template), out in both formats, bad ones refused."""
    egg = (EGGS / "pterodactyl-egg-paper.json").read_text()
    imported = await c.import_template(egg)
    assert imported["name"] == "Paper" and imported["startup_mode"] == "entrypoint"
    assert [i["name"] for i in imported["images"]][:2] == ["Java 21", "Java 17"]
    assert (await c.import_template(egg.encode()))["id"] == imported["id"]
    pelican = json.loads(await c.export_template(imported["id"], "plcn_v3"))
    assert pelican["meta"]["version"] == "PLCN_v3" and "Default" in pelican["startup_commands"]
    assert json.loads(await c.export_template(imported["id"]))["meta"]["version"] == "PTDL_v2"
    with pytest.raises(catalyst.InvalidInputError) as unknown:
        await c.import_template('{"meta": {"version": "PTDL_v9"}, "name": "x"}')
    assert "meta.version" in str(unknown.value)
    with pytest.raises(catalyst.InvalidInputError):
        await c.export_template(imported["id"], "toml")


def test_embedded_on_sqlite(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        url = f"sqlite:{tmp_path}/c.db"
        async with await catalyst.Catalyst.embedded(url, data_dir=str(tmp_path), local_node="process") as c:
            await exercise(c, 25601)
        # Leaving the block closed it: its database connections are gone, and closing again is harmless.
        with pytest.raises(catalyst.UnavailableError):
            await c.list_locations()
        await c.aclose()

    asyncio.run(main())


def test_remote_against_a_catalyst_server(server: str) -> None:
    async def main() -> None:
        c = await catalyst.Catalyst.login(server, "admin@example.test", "admin-password")
        await exercise(c, 25602)
        with pytest.raises(catalyst.UnauthenticatedError):
            await catalyst.Catalyst.login(server, "admin@example.test", "wrong")
        with pytest.raises(catalyst.UnauthenticatedError):
            await catalyst.Catalyst.connect(server, token="forged").me()
        # An API key works the same, its feed included; revoking it ends the open feed.
        server_id = await billing().on_purchase(c, "keyed@example.test", 25604)
        key = rest(server, "POST", "/api/admin/api-keys", {"name": "sdk", "scopes": ["server.read", "console.read"]})
        keyed = catalyst.Catalyst.connect(server, api_key=key["key"])
        assert (await keyed.get_server(server_id))["id"] == server_id
        events = await keyed.events(server_id)
        rest(server, "DELETE", f"/api/admin/api-keys/{key['id']}")
        with pytest.raises(catalyst.UnauthenticatedError):
            await asyncio.wait_for(events.__anext__(), 30)
        with pytest.raises(catalyst.UnauthenticatedError):
            await keyed.get_server(server_id)
        await billing().on_cancellation(c, server_id)

    asyncio.run(main())


def test_sync_facade(server: str) -> None:
    c = catalyst.sync.Catalyst.login(server, "admin@example.test", "admin-password")
    assert c.me()["user"]["email"] == "admin@example.test"
    assert [n["name"] for n in c.list_nodes()["items"]] == ["local"]
    with pytest.raises(catalyst.NotFoundError):
        c.get_server(str(uuid.uuid4()))
    with pytest.raises(catalyst.NotFoundError):
        c.events(str(uuid.uuid4()))


def test_sync_facade_feeds(tmp_path: pathlib.Path) -> None:
    with catalyst.sync.Catalyst.embedded(f"sqlite:{tmp_path}/c.db", data_dir=str(tmp_path), local_node="process") as c:
        sync_feeds(c)
    with pytest.raises(catalyst.UnavailableError):
        c.list_locations()


def sync_feeds(c: catalyst.sync.Catalyst) -> None:
    user = c.create_user({"email": "s@example.test", "username": "sync", "password": "changeme-123"})
    template = c.create_template(billing().GAME)
    server = c.create_server({
        "name": "sync", "owner_id": user["id"], "node_id": c.list_nodes()["items"][0]["id"],
        "template_id": template["id"], "allocations": [{"ip": "127.0.0.1", "port": 25605}],
    })
    events = c.events(server["id"])
    c.delete_server(server["id"])
    # The feed yields what happened, ends with the deletion, and the iteration stops.
    assert [e["type"] for e in events][-1] == "server_deleted"


def test_the_billing_example_runs_as_a_script() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "billing_panel.py")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cancelled: deleted" in done.stdout


def test_stubs_match_the_compiled_module() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy.stubtest", "catalyst._native"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_wheel_installs_into_a_fresh_virtualenv_and_runs_the_example(tmp_path: pathlib.Path) -> None:
    root = pathlib.Path(__file__).resolve().parents[1]
    built = subprocess.run(
        [sys.executable, "-m", "maturin", "build", "--quiet", "--out", str(tmp_path / "dist")],
        cwd=root, capture_output=True, text=True, timeout=900,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("catalyst-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "fresh")], check=True, timeout=120)
    python = tmp_path / "fresh" / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    ran = subprocess.run([str(python), str(EXAMPLES / "billing_panel.py")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "cancelled: deleted" in ran.stdout
