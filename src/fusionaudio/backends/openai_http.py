"""A client for any OpenAI-compatible chat-completions server (vLLM, llama.cpp server,
Ollama, hosted APIs): timeouts, retries with exponential backoff and jitter, and a
concurrency limit shared by every thread that uses the client.

Retried: connection errors, timeouts, HTTP 408/409/429 and 5xx, and 200 answers whose
body is not a chat completion. Anything else (a 400 for a bad request, a 401) fails at
once with the server's message.
"""

from __future__ import annotations

import base64
import io
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import numpy as np

A = TypeVar("A")
R = TypeVar("R")

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class LLMError(RuntimeError):
    """The server could not give an answer; the message says what happened last."""


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    attempts: int


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class ServerSettings:
    """Where an OpenAI-compatible server is and how patiently to talk to it (picklable)."""

    base_url: str
    model: str
    api_key_env: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 0.5
    max_concurrency: int = 4

    def client(self, servers: ServerSlots | None = None) -> OpenAIClient:
        """A client; given ``servers``, its requests share that server's one limit with
        every other client of the same server in this process."""
        api_key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return OpenAIClient(
            self.base_url,
            self.model,
            api_key=api_key,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            max_concurrency=self.max_concurrency,
            slots=None if servers is None else servers.slots(self),
        )


class ServerSlots:
    """One concurrency limit per server (by base URL) for every stage that talks to it.

    Stages each build their own client; the clients of one server take their request
    slots from this one semaphore, so ``max_concurrency`` bounds the server's load, not
    each stage's. A server named with different limits gets the smallest. Pickled without
    its semaphores: a copy in another process (a Ray actor) limits that process.
    """

    def __init__(self, limits: dict[str, int] | None = None) -> None:
        self.limits = dict(limits or {})
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @staticmethod
    def for_servers(servers: Sequence[ServerSettings]) -> ServerSlots:
        limits: dict[str, int] = {}
        for server in servers:
            url = server.base_url.rstrip("/")
            limits[url] = min(limits.get(url, server.max_concurrency), server.max_concurrency)
        return ServerSlots(limits)

    def slots(self, server: ServerSettings) -> threading.BoundedSemaphore:
        url = server.base_url.rstrip("/")
        with self._lock:
            if url not in self._slots:
                limit = self.limits.get(url, server.max_concurrency)
                self._slots[url] = threading.BoundedSemaphore(limit)
            return self._slots[url]

    def __getstate__(self) -> dict[str, dict[str, int]]:
        return {"limits": self.limits}

    def __setstate__(self, state: dict[str, dict[str, int]]) -> None:
        self.__init__(state["limits"])  # type: ignore[misc]


class OpenAIClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_concurrency: int = 4,
        slots: threading.BoundedSemaphore | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_concurrency = max_concurrency
        self.stats = ClientStats()
        self._slots = slots or threading.BoundedSemaphore(max_concurrency)
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.timeout_s),
                headers=headers,
                limits=httpx.Limits(max_connections=self.max_concurrency),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def chat(
        self,
        messages: list[dict[str, Any]],
        max_tokens: int = 512,
        temperature: float = 0.0,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if response_format is not None:
            body["response_format"] = response_format
        if seed is not None:
            body["seed"] = seed
        url = f"{self.base_url}/chat/completions"
        last = "no attempt made"
        for attempt in range(1, self.max_retries + 2):
            started = time.perf_counter()
            with self.stats.lock:
                self.stats.requests += 1
                if attempt > 1:
                    self.stats.retries += 1
            try:
                with self._slots:
                    response = self._http().post(url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return self._parse(response, time.perf_counter() - started, attempt)
                    except LLMError as exc:  # a cut or garbled body: worth another try
                        last = str(exc)
                else:
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                    if response.status_code not in RETRY_STATUS:
                        break
            if attempt <= self.max_retries:
                delay = self.backoff_s * (2 ** (attempt - 1))
                time.sleep(delay * (0.5 + random.random()))
        with self.stats.lock:
            self.stats.failures += 1
        raise LLMError(f"{url} gave no answer after {attempt} attempt(s): {last}")

    @staticmethod
    def _parse(response: httpx.Response, latency: float, attempts: int) -> ChatResult:
        try:
            data = response.json()
            message = data["choices"][0]["message"]
            text = message.get("content")
            if not isinstance(text, str):
                raise TypeError("message content is not text")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"malformed response from server: {exc}; body {response.text[:200]!r}"
            ) from exc
        usage = data.get("usage") or {}
        return ChatResult(
            text=text,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_s=latency,
            attempts=attempts,
        )


def concurrently(ask: Callable[[A], R], items: Sequence[A]) -> list[R]:
    """Each item's answer, in order, with the requests sent at once: a server client holds
    them to its ``max_concurrency``, so this only stops one batch waiting on each answer."""
    if len(items) < 2:
        return [ask(item) for item in items]
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(ask, items))


def wav_base64(signal: np.ndarray, sample_rate: int) -> str:
    """16-bit PCM WAV, base64: what OpenAI-style ``input_audio`` parts carry."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(
        buffer, np.asarray(signal, dtype=np.float32), sample_rate, format="WAV", subtype="PCM_16"
    )
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def jpeg_data_url(rgb: np.ndarray, quality: int = 85) -> str:
    import cv2

    ok, encoded = cv2.imencode(".jpg", rgb[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise ValueError("could not encode frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
