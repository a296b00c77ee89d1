"""py-dactyl, the Pterodactyl client from PyPI, driving a real catalyst-server through
/api/application (the billing side) and /api/client (the customer, with a client key): every
call must return what py-dactyl expects, with no exception."""

from __future__ import annotations

import json
import time

import pytest
from helpers import login, rest
from pydactyl import PterodactylClient
from pydactyl.exceptions import PterodactylApiError


def egg(name: str, done: str) -> dict:
    """A Pterodactyl egg (PTDL_v2), as hosts export them from their panels."""
    return {
        "meta": {"version": "PTDL_v2", "update_url": None}, "name": name, "author": "ops@example.test",
        "description": "An echo server", "features": None, "docker_images": {"busybox": "busybox"},
        "file_denylist": [], "startup": f"echo {done}; while read line; do echo \"> $line\"; done",
        "config": {"files": "{}", "startup": json.dumps({"done": done}), "logs": "{}", "stop": "^C"},
        "scripts": {"installation": {"script": "", "container": "busybox", "entrypoint": "sh"}},
        "variables": [{"name": "Greeting", "description": "", "env_variable": "GREETING", "default_value": "hi",
                       "user_viewable": True, "user_editable": True, "rules": "required|string|max:20",
                       "field_type": "text"}],
    }


def setup(server: str) -> str:
    """Two imported eggs (one nest), ports in the local node's pool, and an API key."""
    for name, done in [("echo", "Done"), ("echo-fast", "Done fast")]:
        rest(server, "POST", "/api/templates/import", egg(name, done))
    node = rest(server, "GET", "/api/nodes")["items"][0]["id"]
    rest(server, "POST", f"/api/nodes/{node}/allocations", {"ip": "127.0.0.1", "ports": ["25801-25802"]})
    scopes = ["admin.users", "server.create", "server.read", "server.update", "server.delete", "server.suspend",
              "node.read", "template.read"]
    return rest(server, "POST", "/api/admin/api-keys", {"name": "pydactyl", "scopes": scopes})["key"]


def wait_installed(api: PterodactylClient, server_id: int) -> None:
    for _ in range(200):
        if api.servers.get_server_info(server_id)["container"]["installed"] == 1:
            return
        time.sleep(0.05)
    raise AssertionError("the server never finished installing")


def wait_state(client: PterodactylClient, identifier: str, state: str) -> None:
    for _ in range(200):
        if client.client.servers.get_server_utilization(identifier)["current_state"] == state:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server never became {state}")


def customer_drives(server: str, identifier: str) -> None:
    """The customer makes a client key (signed in, as in a panel) and runs their server with it."""
    signed_in = PterodactylClient(server, login(server, "pyd@example.test", "customer-password"))
    made = signed_in.client.account.api_key_create("my scripts", [])
    client = PterodactylClient(server, made["attributes"]["identifier"] + made["meta"]["secret_token"])

    assert client.client.account.get_account()["attributes"]["email"] == "pyd@example.test"
    listed = client.client.servers.list_servers()
    assert [s["attributes"]["identifier"] for s in listed.data] == [identifier]
    assert client.client.servers.get_server(identifier)["identifier"] == identifier

    assert client.client.servers.send_power_action(identifier, "start").status_code == 204
    wait_state(client, identifier, "running")
    assert client.client.servers.send_console_command(identifier, "say hello").status_code == 204
    socket = client.client.servers.get_websocket(identifier)["data"]
    assert socket["socket"].endswith("/api/ws") and socket["token"].startswith("catalyst-ticket."), socket
    client.client.servers.files.write_file(identifier, "notes.txt", "from pydactyl\n")
    names = [f["attributes"]["name"] for f in client.client.servers.files.list_files(identifier, "/")["data"]]
    assert "notes.txt" in names
    assert client.client.servers.files.get_file_contents(identifier, "notes.txt", json=False).text == "from pydactyl\n"
    backup = client.client.servers.backups.create_backup(identifier)
    assert backup["object"] == "backup"
    backups = client.client.servers.backups.list_backups(identifier)
    assert [b["attributes"]["uuid"] for b in backups["data"]] == [backup["attributes"]["uuid"]]
    variables = client.client.servers.startup.list_variables(identifier)
    assert [v["attributes"]["env_variable"] for v in variables["data"]] == ["GREETING"]
    assert client.client.servers.send_power_action(identifier, "stop").status_code == 204
    wait_state(client, identifier, "offline")


def test_pydactyl_provisions_changes_and_terminates(server: str) -> None:
    api = PterodactylClient(server, setup(server))

    user = api.user.create_user("pyd_user", "pyd@example.test", "Py", "Dactyl", external_id="billing-42",
                                password="customer-password")
    user_id = user["attributes"]["id"]
    assert api.user.get_user_info(external_id="billing-42")["attributes"]["id"] == user_id
    assert [u["attributes"]["id"] for u in api.user.list_users(email="pyd@example.test").data] == [user_id]
    assert api.user.list_users(email="dactyl").data == [], "filter[email] is exact"

    nest = api.nests.list_nests()[0]["attributes"]
    in_nest = api.nests.get_eggs_in_nest(nest["id"])["data"]
    eggs = {e["attributes"]["name"]: e["attributes"]["id"] for e in in_nest}
    location = api.locations.list_locations()[0]["attributes"]["id"]
    created = api.servers.create_server(
        "pyd-server", user_id, nest["id"], eggs["echo"], 256, 0, 1024, location_ids=[location],
        port_range=["25801-25802"], environment={"GREETING": "hello"}, external_id="svc-42",
        allocation_limit=2, backup_limit=1,
    ).json()["attributes"]
    server_id = created["id"]
    assert created["container"]["environment"]["GREETING"] == "hello"
    assert api.servers.get_server_info(external_id="svc-42")["id"] == server_id
    wait_installed(api, server_id)

    assert api.servers.suspend_server(server_id).status_code == 204
    assert api.servers.get_server_info(server_id)["suspended"] is True
    assert api.servers.unsuspend_server(server_id).status_code == 204
    allocation = api.servers.get_server_info(server_id)["allocation"]
    api.servers.update_server_build(server_id, allocation, memory_limit=512, swap_limit=0, disk_limit=2048,
                                    cpu_limit=100, io_limit=500, database_limit=0, allocation_limit=2,
                                    backup_limit=2)
    assert api.servers.get_server_info(server_id)["limits"]["memory"] == 512
    api.servers.update_server_startup(server_id, egg_id=eggs["echo-fast"], environment={"GREETING": "hey"})
    info = api.servers.get_server_info(server_id)
    assert (info["egg"], info["container"]["environment"]["GREETING"]) == (eggs["echo-fast"], "hey")
    api.servers.update_server_details(server_id, "renamed", user_id, external_id="svc-42", description="up")
    assert api.servers.get_server_info(server_id)["name"] == "renamed"
    wait_installed(api, server_id)
    assert api.servers.reinstall_server(server_id).status_code == 204

    wait_installed(api, server_id)
    customer_drives(server, created["identifier"])

    # A second server takes the other port; a third finds no room (400, as WHMCS expects).
    second = api.servers.create_server("pyd-2", user_id, nest["id"], eggs["echo"], 256, 0, 1024,
                                       location_ids=[location], port_range=["25801-25802"])
    assert second.status_code == 201
    with pytest.raises(PterodactylApiError, match="no node satisfies the request"):
        api.servers.create_server("pyd-3", user_id, nest["id"], eggs["echo"], 256, 0, 1024,
                                  location_ids=[location], port_range=["25801-25802"])
    with pytest.raises(PterodactylApiError):
        api.servers.create_server("pyd-4", user_id, nest["id"], eggs["echo"], 256, 0, 1024,
                                  location_ids=[location], port_range=["70000-1"])

    # Pages: one server per page, following meta.pagination.links.next.
    first = api.servers.list_servers(params={"per_page": 1})
    assert (first.meta["pagination"]["total"], first.meta["pagination"]["total_pages"]) == (2, 2)
    assert "next" in first.meta["pagination"]["links"]
    assert len(api.servers.list_servers().collect()) == 2

    for sid in (server_id, second.json()["attributes"]["id"]):
        wait_installed(api, sid)
        assert api.servers.delete_server(sid).status_code == 204
    assert api.servers.list_servers().meta["pagination"]["total"] == 0
    api.user.delete_user(user_id)
    with pytest.raises(Exception):
        api.user.get_user_info(user_id)
