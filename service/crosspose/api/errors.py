"""One error shape for every API failure: ``{"detail": str, "problems": [str, …], …}`` with a 4xx status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """An error a client caused, answered as JSON.

    Args:
        status_code: the HTTP status (4xx).
        detail: one sentence saying what went wrong.
        problems: every specific reason, each naming what to fix.
        headers: extra response headers (e.g. ``WWW-Authenticate``).
        extra: further top-level body fields (e.g. ``missing``/``extra`` cameras).
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        problems: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.problems = list(problems)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def response(self) -> JSONResponse:
        body = {"detail": self.detail, "problems": self.problems, **self.extra}
        return JSONResponse(body, status_code=self.status_code, headers=self.headers)


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return ApiError(exc.status_code, str(exc.detail), headers=exc.headers).response()


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    return ApiError(422, "invalid request", problems).response()


def install_error_handlers(app: FastAPI) -> None:
    """Answer ``ApiError``, HTTP errors (404, 405 …) and request validation errors in the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
