"""A local OpenAI-compatible chat server for tests: scripted failures, recorded requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], str]


@dataclass
class ServerScript:
    """``actions`` are consumed one per request: "500", "timeout", "malformed", "hang-up",
    or "ok"; when they run out every request is answered "ok" with ``reply(body)``."""

    reply: Reply
    actions: list[str] = field(default_factory=list)
    timeout_sleep_s: float = 2.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self, body: dict[str, Any]) -> str:
        with self.lock:
            self.requests.append(body)
            return self.actions.pop(0) if self.actions else "ok"


def _handler(script: ServerScript) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            action = script.next_action(body)
            if action == "timeout":
                time.sleep(script.timeout_sleep_s)
            if action == "hang-up":
                self.close_connection = True
                return
            if action == "500":
                self._send(500, b'{"error": "internal"}')
                return
            if action == "malformed":
                self._send(200, b'{"choices": [{"mess')
                return
            text = script.reply(body)
            payload = {
                "id": "test",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split())},
            }
            self._send(200, json.dumps(payload).encode())

        def _send(self, status: int, data: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@contextmanager
def serve(script: ServerScript) -> Iterator[str]:
    """Run the server on a free loopback port; yields its base URL (``.../v1``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def openai_llm(url: str, timeout_s: float = 5.0, **server: Any) -> dict[str, Any]:
    """The ``llm`` section for a test server: model "m", no retries, a short timeout."""
    return {
        "backend": "openai",
        "server": {"base_url": url, "model": "m", "max_retries": 0, "timeout_s": timeout_s,
                   **server},
    }  # fmt: skip
