"""Bound every request body: refuse an oversized one before it is read (by its
Content-Length when it has one, else by counting the bytes as they arrive: 413 either way,
chunked uploads included) and cut off one that arrives too slowly (408: a body must keep
arriving, at least every `idle_s` seconds, and be complete within `total_s`)."""

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SLACK = 64 * 1024  # multipart boundaries and form fields around the file
DISCONNECT: Message = {"type": "http.disconnect"}


class UploadLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, idle_s: float = 15.0, total_s: float = 120.0):
        self.app, self.limit = app, max_bytes + SLACK
        self.idle_s, self.total_s = idle_s, total_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self.refuse(send, 413, f"the upload is over {self.limit - SLACK:,} bytes")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_s
        seen, done = 0, False
        state = {"started": False, "refused": False}

        async def refuse_once(status: int, detail: str) -> Message:
            # answer now and tell the app the client left: whatever it answers is dropped
            if not state["started"] and not state["refused"]:
                state["refused"] = True
                await self.refuse(send, status, detail)
            return DISCONNECT

        async def guarded_receive() -> Message:
            nonlocal seen, done
            if state["refused"]:
                return DISCONNECT
            if done:  # the body is in: what is left to wait for is the client leaving
                return await receive()
            left = deadline - loop.time()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, min(self.idle_s, left)))
            except TimeoutError:
                slow = f"the request body arrived too slowly (limit {self.total_s:g} s, "
                slow += f"{self.idle_s:g} s without data)"
                return await refuse_once(408, slow)
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = f"the upload is over {self.limit - SLACK:,} bytes"
                    return await refuse_once(413, over)
                done = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, guarded_receive, guarded_send)

    async def refuse(self, send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
