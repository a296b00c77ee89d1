"""Blocking access to Catalyst: the same methods as ``catalyst.Catalyst``, without ``await``.

Each call runs on a private event loop, so it works from plain scripts and web handlers that
are not async.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Iterator

from . import _native


class Catalyst:
    """A blocking wrapper of :class:`catalyst.Catalyst`."""

    def __init__(self, inner: _native.Catalyst) -> None:
        self._inner = inner

    @staticmethod
    def embedded(
        database_url: str, data_dir: str | None = None, local_node: str | None = None, allow_unconfined: bool = False
    ) -> "Catalyst":
        return Catalyst(_run(lambda: _native.Catalyst.embedded(database_url, data_dir, local_node, allow_unconfined)))

    @staticmethod
    def connect(url: str, token: str | None = None, api_key: str | None = None) -> "Catalyst":
        return Catalyst(_native.Catalyst.connect(url, token=token, api_key=api_key))

    @staticmethod
    def login(url: str, email: str, password: str) -> "Catalyst":
        return Catalyst(_run(lambda: _native.Catalyst.login(url, email, password)))

    def events(self, server_id: str, since: int | None = None) -> Iterator[dict[str, Any]]:
        """A server's events as they happen (console lines after ``since`` first)."""
        return _iterate(_run(lambda: self._inner.events(server_id, since)))

    def console(self, server_id: str, since: int | None = None) -> Iterator[dict[str, Any]]:
        """A server's console lines as they come (after ``since`` first, when given)."""
        return _iterate(_run(lambda: self._inner.console(server_id, since)))

    def close(self) -> None:
        """Stop what this handle runs (an embedded control plane's node, tasks, connections)."""
        _run(self._inner.aclose)

    def __enter__(self) -> "Catalyst":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return _run(lambda: method(*args, **kwargs))

        return blocking


_loop = asyncio.new_event_loop()
_lock = threading.Lock()


def _run(make: Any) -> Any:
    # The awaitable is made inside the loop: the native side needs a running loop.
    async def wrap() -> Any:
        return await make()

    with _lock:
        return _loop.run_until_complete(wrap())


def _iterate(feed: _native.Feed) -> Iterator[dict[str, Any]]:
    try:
        while True:
            try:
                yield _run(feed.__anext__)
            except StopAsyncIteration:
                return
    finally:
        _run(feed.aclose)
