"""Both modes of the SDK: embedded (SQLite, a local process node) and remote (a catalyst-server
that the fixture starts from the workspace's target directory)."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import time
import urllib.request
from typing import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_binary() -> pathlib.Path:
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / "catalyst-server"
    assert path.exists(), f"{path} is missing: run `cargo build --workspace --bins` first"
    return path


@pytest.fixture
def server(tmp_path: pathlib.Path) -> Iterator[str]:
    """A fresh catalyst-server (process runtime); yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALYST_")}
    env["CATALYST_ADMIN_EMAIL"] = "admin@example.test"
    env["CATALYST_ADMIN_PASSWORD"] = "admin-password"
    proc = subprocess.Popen(
        [str(server_binary()), "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "server"),
         "--local-runtime", "process", "--sftp-listen", ""],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("catalyst-server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
