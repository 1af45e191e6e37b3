"""The RAG endpoint's HTTP contract: routes, request validation, auth and error mapping.

Kept apart from Ray so the contract reads in one place: ``make_api`` builds the FastAPI app around
any ``Backend`` (the Serve ingress passes itself, calling its deployments through handles).

* ``POST /retrieve`` ``{"question": str, "k": int}`` → passages with ids, scores and text.
* ``POST /ask`` → the generator's answer, the passage ids it cites, and the passages it was given.
* ``GET /healthz`` → up or down without a token; with the token (or with auth off), also what is
  loaded and whether the generator answers, never an upstream address.
* ``GET /docs``, ``/openapi.json``: the OpenAPI description.

Every bad request gets a 4xx whose ``detail`` names the problem: malformed JSON (400), a missing,
empty, too long or non-string question, or a k outside 1..max_k (422), a body over the size limit
(413), a missing or wrong bearer token (401). A generator that does not answer gives 503 on
``/ask`` only, naming what went wrong (timed out, an HTTP status, unreachable) but never the
upstream's address or error body, which go to the replica's log. The token is compared by its
SHA-256, so the process never holds it in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr


@dataclass(frozen=True)
class ApiSettings:
    default_k: int
    max_k: int
    max_body_bytes: int
    max_question_chars: int
    token_sha256: Optional[str] = None  # None: no auth


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    k: Optional[StrictInt] = None


class PassageOut(BaseModel):
    id: str
    score: float
    text: str


class RetrieveResponse(BaseModel):
    question: str
    retriever: str
    passages: list[PassageOut]


class AskResponse(BaseModel):
    question: str
    answer: str
    cited_ids: list[str]
    generator: str
    retriever: str
    passages: list[PassageOut]


class Backend(Protocol):
    async def retrieve(self, question: str, k: int) -> dict[str, Any]: ...

    async def answer(self, question: str, passages: list[dict[str, Any]]) -> dict[str, Any]: ...

    async def health(self) -> dict[str, Any]: ...


def _error(status: int, detail: str, headers: Optional[dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _describe(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """One readable line for a request that failed validation."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, 'request body is not valid JSON; send {"question": "...", "k": 5}'
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        if e.get("type") == "missing" and not where:
            return 422, 'request body is required: a JSON object like {"question": "...", "k": 5}'
        if e.get("type") == "extra_forbidden":
            parts.append(f"{where}: unknown field")
        else:
            parts.append(f"{where or 'body'}: {e.get('msg')}")
    return 422, "; ".join(parts)


def authorized(scope: dict[str, Any], settings: ApiSettings) -> bool:
    """The request carries the bearer token (always true with auth off)."""
    if not settings.token_sha256:
        return True
    header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return hmac.compare_digest(token_digest(token.strip()), settings.token_sha256)


def unavailable(error: str) -> str:
    """What a client may learn of a generator failure: its kind, not the upstream's address or body."""
    if error.startswith("timed out"):
        return "generator unavailable: it timed out"
    if error.startswith("not started"):
        return "generator unavailable: no generator is running (its local server could not start; see the replica log)"
    status = re.match(r"HTTP (\d{3})", error)
    if status:
        return f"generator unavailable: it answered HTTP {status.group(1)}"
    return "generator unavailable: it could not be reached"


class _Guard:
    """ASGI middleware run before routing: bearer-token auth, then the body-size limit (the body is
    buffered up to the limit and replayed, so a client cannot stream past it)."""

    def __init__(self, app: Any, settings: ApiSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if self.settings.token_sha256 and path != "/healthz" and not authorized(scope, self.settings):
            response = _error(401, "missing or invalid bearer token (Authorization: Bearer <token>)", {"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        limit = self.settings.max_body_bytes
        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_large = _error(413, f"request body is larger than {limit} bytes")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await too_large(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return await too_large(scope, receive, send)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

class _Rejected(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def make_api(backend: Backend, settings: ApiSettings) -> FastAPI:
    api = FastAPI(
        title="idistill RAG",
        description="Retrieval with a distilled dense retriever, and answers grounded in the retrieved passages.",
        version="0.1.0",
    )

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(*_describe(list(exc.errors())))

    def checked(req: QueryRequest) -> tuple[str, int]:
        question = req.question.strip()
        if not question:
            raise _Rejected(422, "question: must not be empty")
        if len(question) > settings.max_question_chars:
            raise _Rejected(422, f"question: longer than {settings.max_question_chars} characters")
        k = settings.default_k if req.k is None else req.k
        if not 1 <= k <= settings.max_k:
            raise _Rejected(422, f"k: must be between 1 and {settings.max_k}, got {k}")
        return question, k

    @api.exception_handler(_Rejected)
    async def _rejected(_: Request, exc: _Rejected) -> JSONResponse:
        return _error(exc.status, exc.detail)

    @api.post("/retrieve", response_model=RetrieveResponse)
    async def retrieve(req: QueryRequest) -> Any:
        question, k = checked(req)
        found = await backend.retrieve(question, k)
        return {"question": question, **found}

    @api.post("/ask", response_model=AskResponse, responses={503: {"description": "the generator did not answer"}})
    async def ask(req: QueryRequest) -> Any:
        question, k = checked(req)
        found = await backend.retrieve(question, k)
        reply = await backend.answer(question, found["passages"])
        if not reply["ok"]:
            print(f"ask: generator failed: {reply['error']}")  # the replica's log; the client gets the kind only
            return _error(503, unavailable(reply["error"]))
        return {"question": question, "answer": reply["answer"], "cited_ids": reply["cited_ids"],
                "generator": reply["model"], **found}

    @api.get("/healthz")
    async def healthz(request: Request) -> Any:
        if not authorized(request.scope, settings):
            return {"status": "ok"}
        return {"status": "ok", **(await backend.health())}

    api.add_middleware(_Guard, settings=settings)
    return api
