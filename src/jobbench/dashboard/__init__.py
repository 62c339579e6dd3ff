"""The jobbench web dashboard (needs the ``dashboard`` extra: starlette, jinja2, uvicorn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobbench.dashboard.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from jobbench.dashboard.app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
