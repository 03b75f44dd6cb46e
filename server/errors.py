"""One error type and its handlers: every failure leaves the server as OpenAI-shaped JSON.

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
}


class APIError(Exception):
    """A request the server answers with an error; ``param`` names the offending field."""

    def __init__(self, status_code: int, message: str, *, param: str | None = None,
                 code: str | None = None, error_type: str | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type or _TYPE_BY_STATUS.get(status_code, "server_error")

    def to_json(self) -> dict:
        return {"error": {"message": self.message, "type": self.error_type,
                          "param": self.param, "code": self.code}}


def invalid_request(message: str, param: str | None = None) -> APIError:
    return APIError(400, message, param=param)


def from_validation_error(error: ValidationError | RequestValidationError) -> APIError:
    """A 400 whose message names every invalid field by its dotted path."""
    problems, first_param = [], None
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ()) if part != "body"]
        path = ".".join(loc)
        first_param = first_param or path or None
        message = item.get("msg", "invalid value")
        if item.get("type") == "missing":
            message = "field required"
        problems.append(f"{path}: {message}" if path else message)
    return invalid_request("; ".join(problems) or "invalid request", first_param)


def respond(error: APIError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
    return JSONResponse(error.to_json(), status_code=error.status_code, headers=headers)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, error: APIError):
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.observe_error(error)
        return respond(error)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, error: RequestValidationError):
        return respond(from_validation_error(error))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException):
        return respond(APIError(error.status_code, str(error.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception):
        logger.exception("request failed")
        return respond(APIError(500, f"internal error: {type(error).__name__}: {error}"))
