"""What several test files share."""

from __future__ import annotations

import json
import urllib.request


def rest(server: str, method: str, path: str, body: dict | None = None) -> dict:
    """A REST call as the operator (for what the SDK leaves to the admin API)."""
    login = json.dumps({"email": "admin@example.test", "password": "admin-password"}).encode()
    request = urllib.request.Request(f"{server}/api/auth/login", login, {"content-type": "application/json"})
    token = json.load(urllib.request.urlopen(request))["access_token"]
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(f"{server}{path}", data, headers, method=method)) as answer:
        text = answer.read()
    return json.loads(text) if text else {}
