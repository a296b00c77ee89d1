"""Catalyst game-server hosting from Python.

``Catalyst.embedded(...)`` runs the control plane in this process; ``Catalyst.connect(...)`` or
``Catalyst.login(...)`` talk to a running catalyst-server. Both have the same async methods;
``catalyst.sync.Catalyst`` offers them without ``await``. ``await c.events(id)`` and
``await c.console(id)`` subscribe to a server: ``async for`` over what they return.
"""

from ._native import (
    Catalyst,
    CatalystError,
    ConflictError,
    Feed,
    InternalError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    TimeoutError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = [
    "Catalyst",
    "CatalystError",
    "ConflictError",
    "Feed",
    "InternalError",
    "InvalidInputError",
    "InvalidTransitionError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitedError",
    "TimeoutError",
    "UnauthenticatedError",
    "UnavailableError",
]
