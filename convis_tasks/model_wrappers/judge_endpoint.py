"""The caption judge's OpenAI-compatible endpoint client (httpx): bounded in time, retried within bounds, checked.

One POST of ``{base_url}/chat/completions`` per answer, through one ``httpx.Client`` (kept-alive connections):

* **Deadline.** ``timeout`` bounds a whole request, connection to last byte: the reply body is streamed and the
  deadline checked after every chunk, so a server that trickles bytes is cut off at the deadline (before, each
  byte restarted a per-read clock: no bound at all). Each socket phase (connect, send, each read) is also bounded
  by ``timeout``, which cuts off a silent server; the worst case, a connect, send and first read each just under
  ``timeout``, is under 3 x ``timeout``. A reply over ``MAX_REPLY_BYTES`` is refused.
* **Retries.** At most ``tries`` attempts (3). Retried: HTTP 429 and 5xx, and a connection that fails before a reply
  (refused, reset, closed). The wait before attempt ``k + 1`` is the reply's ``Retry-After`` (seconds or an HTTP
  date) capped at ``retry_after_cap`` (30 s), else ``backoff * 2 ** (k - 1)`` (0.5 s, 1 s). Not retried: other
  4xx (the request is wrong), the deadline (``timeout`` is the user's bound), a redirect, an invalid reply.
  Worst case per answer: ``tries * 3 * timeout`` plus the waits.
* **No credential across hosts.** Redirects are never followed (a 3xx is an error naming the endpoint and the
  ``Location``), so the ``Authorization`` header only goes to ``base_url``'s host. The API key is kept out of every
  message: URLs are shown without user info or query, and the key is masked in any text the server sends back.
* **Validated replies.** The body must be UTF-8 and strict JSON (no ``NaN``/``Infinity``, no duplicate key), an
  object with a non-empty ``choices`` list whose first element has a ``message`` object with a string (or null)
  ``content``. Errors name the endpoint and what was expected. The log-probability checks are in
  :func:`convis_tasks.scoring.expected.check_top_logprobs` and :func:`first_token_top_logprobs`.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from convis_tasks.reading.jsonio import strict_loads
from convis_tasks.safetext import terminal

DEFAULT_TRIES = 3
DEFAULT_BACKOFF = 0.5
DEFAULT_RETRY_AFTER_CAP = 30.0
MAX_REPLY_BYTES = 8 * 1024 * 1024


class EndpointError(RuntimeError):
    """The endpoint failed or sent an invalid reply; the message names the endpoint and what was wrong."""


def redact_url(url: str) -> str:
    """``url`` without user info (``user:key@``) and with its query, which may carry a key, replaced by ``?...``."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "..." if parts.query else "", ""))


def retry_delay(attempt: int, retry_after: str | None, backoff: float, cap: float,
                now: float | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``Retry-After`` (delta seconds or HTTP date)
    capped at ``cap``, else ``backoff * 2 ** (attempt - 1)`` (also capped)."""
    if retry_after is not None:
        text = retry_after.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(text).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                when = None
            seconds = None if when is None else when - (time.time() if now is None else now)
        if seconds is not None and math.isfinite(seconds):
            return min(max(seconds, 0.0), cap)
    return min(backoff * 2 ** (attempt - 1), cap)


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


class EndpointClient:
    """POSTs JSON to one URL and returns the validated reply object (see the module docstring)."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0, tries: int = DEFAULT_TRIES,
                 backoff: float = DEFAULT_BACKOFF, retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None) -> None:
        for name, value, low in (("timeout", timeout, 0.0), ("backoff", backoff, -1.0),
                                 ("retry_after_cap", retry_after_cap, -1.0)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > low):
                raise ValueError(f"{name} must be a finite number {'> 0' if low == 0 else '>= 0'}, got {value!r}")
        if not isinstance(tries, int) or tries < 1:
            raise ValueError(f"tries must be a positive integer, got {tries!r}")
        self.url, self.where = str(url), f"endpoint {redact_url(url)}"
        self.api_key = api_key or None
        self.timeout, self.tries = float(timeout), tries
        self.backoff, self.retry_after_cap = float(backoff), float(retry_after_cap)
        self.sleep = sleep
        self.attempts = 0  # attempts made by the last post(), for diagnostics and tests
        self.client = httpx.Client(follow_redirects=False, transport=transport)

    def close(self) -> None:
        self.client.close()

    def _mask(self, text: str) -> str:
        """Server text safe to show: the key masked, control characters escaped, at most 300 characters."""
        text = str(text)
        if self.api_key:
            text = text.replace(self.api_key, "***")
        return terminal(text[:300])

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _attempt(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request within the deadline: (status, headers, body)."""
        deadline = time.monotonic() + self.timeout
        chunks, size = [], 0
        with self.client.stream("POST", self.url, content=data, headers=self._headers(),
                                timeout=httpx.Timeout(self.timeout)) as response:
            for chunk in response.iter_bytes():
                size += len(chunk)
                chunks.append(chunk)
                if size > MAX_REPLY_BYTES:
                    raise EndpointError(f"{self.where}: reply larger than {MAX_REPLY_BYTES} bytes; expected a chat "
                                        "completion (JSON of a few kB)")
                if time.monotonic() > deadline:
                    raise EndpointError(f"{self.where}: no complete reply within timeout={self.timeout:g} s "
                                        f"({size} bytes received); the timeout bounds the whole request")
            return response.status_code, dict(response.headers), b"".join(chunks)

    def post(self, body: dict) -> dict:
        """The reply object of one chat-completions request, retried and validated as the module docstring says."""
        data = json.dumps(body).encode("utf-8")
        self.attempts = 0
        for attempt in range(1, self.tries + 1):
            self.attempts = attempt
            retry_after, problem = None, ""
            try:
                status, headers, raw = self._attempt(data)
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout):
                    problem = f"could not connect within timeout={self.timeout:g} s"
                else:
                    raise EndpointError(f"{self.where}: no complete reply within timeout={self.timeout:g} s "
                                        f"({type(exc).__name__}); the timeout bounds the whole request") from None
            except httpx.TransportError as exc:  # refused, reset, closed before a reply
                problem = f"connection failed ({type(exc).__name__}: {self._mask(exc)})"
            else:
                if 300 <= status < 400:
                    location = headers.get("location", "")
                    raise EndpointError(f"{self.where}: HTTP {status} redirect to {redact_url(location) or '?'}; "
                                        "redirects are not followed (the API key would go with them): set base_url "
                                        "to the address that answers")
                if 200 <= status < 300:
                    return parse_reply(raw, self.where)
                detail = self._mask(raw.decode("utf-8", "replace"))
                problem = f"HTTP {status}: {detail}"
                if not _retryable(status):
                    raise EndpointError(f"{self.where}: {problem}")
                retry_after = headers.get("retry-after")
            if attempt == self.tries:
                raise EndpointError(f"{self.where}: {problem} (after {self.tries} tries)")
            self.sleep(retry_delay(attempt, retry_after, self.backoff, self.retry_after_cap))
        raise AssertionError("unreachable")  # pragma: no cover


def parse_reply(raw: bytes, where: str) -> dict:
    """A chat completion from the raw body: UTF-8, strict JSON, the shape the judge reads (module docstring)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EndpointError(f"{where}: reply is not UTF-8 text (byte {exc.start} is {raw[exc.start:exc.start + 1]!r}); "
                            "expected a JSON chat completion") from None
    reply = strict_loads(text, f"{where}: reply (expected a JSON chat completion)", error=EndpointError)
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EndpointError(f"{where}: reply has no choices; expected a chat completion "
                            f'{{"choices": [{{"message": {{"content": ...}}}}]}}, got {terminal(text[:200])}')
    message = choices[0].get("message")
    if not isinstance(message, dict) or not isinstance(message.get("content"), (str, type(None))):
        raise EndpointError(f"{where}: choices[0].message.content is missing or not text; got "
                            f"{terminal(json.dumps(choices[0])[:200])}")
    return reply


def first_token_top_logprobs(reply: dict, where: str) -> tuple[tuple[str, float], list[tuple[str, float]]]:
    """The first answer token's ``(token, logprob)`` and its ``top_logprobs`` list (asked for with
    ``logprobs=true``), each entry checked to be a string and a number (the values: ``check_top_logprobs``)."""
    logprobs = reply["choices"][0].get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        raise EndpointError(f"{where}: the reply has no log-probabilities (choices[0].logprobs.content[0]); "
                            "expected mode asks for them (logprobs=true, top_logprobs=N): an endpoint without "
                            "log-probabilities needs mode=greedy")
    first = content[0]
    entries = first.get("top_logprobs")
    if not isinstance(entries, list):
        raise EndpointError(f"{where}: choices[0].logprobs.content[0].top_logprobs is not a list")
    pairs = []
    for k, entry in enumerate([first] + entries):
        token = entry.get("token") if isinstance(entry, dict) else None
        value = entry.get("logprob") if isinstance(entry, dict) else None
        if not isinstance(token, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
            at = "content[0]" if k == 0 else f"content[0].top_logprobs[{k - 1}]"
            raise EndpointError(f"{where}: {at} needs a string token and a numeric logprob, got "
                                f"{terminal(json.dumps(entry)[:120])}")
        pairs.append((token, float(value)))
    return pairs[0], pairs[1:]
