"""The service's app plus one POST floor route, for ``http_bench.py`` only.

``POST /bench/floor`` reads the body and answers ``{}``: what any Litestar POST
endpoint on this server pays before doing work. ``/v1/predict`` is measured
against it (and ``GET /healthz`` is the floor without a body).
"""

from __future__ import annotations

from typing import Any

from churn_api.app import app_from_env
from litestar import Litestar, MediaType, Request, Response, post

__all__ = ["FLOOR_PATH", "app_with_floor"]

FLOOR_PATH = "/bench/floor"


@post(FLOOR_PATH, status_code=200)
async def floor(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Read the body, answer an empty JSON object."""
    await request.body()
    return Response(content=b"{}", media_type=MediaType.JSON)


def app_with_floor() -> Litestar:
    """Granian's factory: the service's app from the environment, plus the floor route."""
    app = app_from_env()
    app.register(floor)
    return app
