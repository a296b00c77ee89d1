"""What several test files share."""

from __future__ import annotations

import json
import urllib.request


def login(server: str, email: str, password: str) -> str:
    """An access token for a user."""
    body = json.dumps({"email": email, "password": password}).encode()
    request = urllib.request.Request(f"{server}/api/auth/login", body, {"content-type": "application/json"})
    return json.load(urllib.request.urlopen(request))["access_token"]


def rest(server: str, method: str, path: str, body: dict | None = None) -> dict:
    """A REST call as the operator (for what the SDK leaves to the admin API)."""
    token = login(server, "admin@example.test", "admin-password")
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(f"{server}{path}", data, headers, method=method)) as answer:
        text = answer.read()
    return json.loads(text) if text else {}
