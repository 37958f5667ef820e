"""HTTP methods the routes do not declare: HEAD for every GET, OPTIONS, and 405 answers that
list every method a path takes (FastAPI's routes take only the methods they declare, and
Starlette's 405 lists the methods of the first route that matched the path, not all)."""

import json
import re
from collections.abc import MutableMapping
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send


class Methods:
    """ASGI middleware over the app's `routes`. HEAD runs the GET and sends its status and
    headers (Content-Length included) without the body; `no_head` names the route paths
    whose GET is an endless stream (server-sent events), which get no HEAD."""

    def __init__(self, app: ASGIApp, routes: list, no_head: frozenset[str] = frozenset()):
        self.app, self.routes, self.no_head = app, routes, no_head
        self._paths: list[tuple[re.Pattern, set[str], bool]] = []  # built at the first request

    def allowed(self, path: str) -> set[str]:
        """The methods `path` takes (HEAD wherever GET, but for streams)."""
        if not self._paths:
            for rc in iter_route_contexts(self.routes):  # the routes of included routers too
                route, fmt = rc.original_route, rc.path_format or ""
                if isinstance(route, Mount):  # static files: anything below the prefix
                    regex = re.compile(re.escape(fmt.rstrip("/")) + "/.*")
                    self._paths.append((regex, {"GET", "HEAD"}, False))
                elif rc.methods and rc.path:
                    regex = compile_path(rc.path)[0]
                    self._paths.append((regex, set(rc.methods), rc.path in self.no_head))
        methods: set[str] = set()
        stream = False
        for regex, route_methods, is_stream in self._paths:
            if regex.fullmatch(path):
                methods |= route_methods
                stream |= is_stream and "GET" in route_methods
        if "GET" in methods and not stream:
            methods.add("HEAD")
        return methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "POST", "DELETE"):
            return await self.app(scope, receive, send)
        methods = self.allowed(scope["path"])
        if not methods:  # no such path: the app's own 404
            return await self.app(scope, receive, send)
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        method = scope["method"]
        if method == "OPTIONS":
            return await self._answer(send, 204, b"", allow)
        if method not in methods:
            detail = f"{method} is not allowed here; this path takes {allow}"
            return await self._answer(send, 405, json.dumps({"detail": detail}).encode(), allow)
        if method == "HEAD" and "HEAD" in methods:
            return await self.app({**scope, "method": "GET"}, receive, _without_body(send))
        return await self.app(scope, receive, send)

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes, allow: str) -> None:
        headers = [(b"allow", allow.encode()), (b"content-length", str(len(body)).encode())]
        if body:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _without_body(send: Send) -> Send:
    done = False

    async def head_send(message: MutableMapping[str, Any]) -> None:
        nonlocal done
        if message["type"] != "http.response.body":
            return await send(message)
        if not done and not message.get("more_body", False):
            done = True
            await send({"type": "http.response.body", "body": b""})

    return head_send
