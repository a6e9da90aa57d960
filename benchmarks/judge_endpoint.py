"""Per-request cost of the caption judge's endpoint checks (issue #19), against a stub server on 127.0.0.1.

    python benchmarks/judge_endpoint.py [--requests 200] [--repeat 3]

Prints, per request (median of ``--repeat`` (5) runs of ``--requests`` requests, expected mode, a 20-entry
``top_logprobs`` reply of the size a real endpoint sends):

* ``urllib, no checks``: the judge's former transport (one new connection per request, ``json.loads``);
* ``httpx, no checks``: a bare keep-alive ``httpx.Client`` POST and ``json.loads`` (the transport alone);
* ``EndpointJudge.answer``: the judge now (httpx, deadline checks per chunk, strict UTF-8 and JSON, the reply's
  shape and log-probabilities checked, captions escaped, the answer formatted);

and, without any network, the checks alone per reply (``parse_reply`` + ``first_token_top_logprobs`` +
``check_top_logprobs``, against ``json.loads``) and the caption escaping per ~800-character caption.
"""

from __future__ import annotations

import argparse
import http.server
import json
import math
import statistics
import sys
import threading
import time
import timeit
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from convis_tasks.model_wrappers.caption_judge import EndpointJudge, JudgeItem  # noqa: E402
from convis_tasks.model_wrappers.caption_tokens import escape_control_syntax  # noqa: E402
from convis_tasks.model_wrappers.judge_endpoint import first_token_top_logprobs, parse_reply  # noqa: E402
from convis_tasks.scoring.expected import check_top_logprobs, expected_from_top_logprobs  # noqa: E402

TOKENS = ["4", "3", "5", "2", "1", "The", " 4", "Based", "**", "I"] + [f"t{i}" for i in range(10)]
PROBS = [0.30, 0.20, 0.10, 0.08, 0.05] + [0.01] * 15
TOP = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in zip(TOKENS, PROBS)]
REPLY = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "judge",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "length",
                                 "logprobs": {"content": [{"token": "4", "logprob": math.log(0.3),
                                                           "bytes": [52], "top_logprobs": TOP}]}}],
                    "usage": {"prompt_tokens": 700, "completion_tokens": 1, "total_tokens": 701}}).encode()
NODELAY_SERVER = "--nagle-server" not in sys.argv
CAPTION = ("The video shows a man in a red jacket walking a brown dog along a river path in a park, with trees, "
           "benches and a bridge in the background. ") * 6  # ~800 characters, like the released captions


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    disable_nagle_algorithm = NODELAY_SERVER  # TCP_NODELAY, as uvicorn (vLLM, SGLang) sets it

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)

    def log_message(self, *args):
        pass


def _urllib_post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
                                     method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read().decode("utf-8"))


def _per_request(run, n: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            run()
        times.append((time.perf_counter() - start) / n)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--nagle-server", action="store_true",
                        help="leave Nagle's algorithm on in the stub server (http.server's default): its reply head "
                             "and body go apart and keep-alive clients wait ~40 ms for each")
    args = parser.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    judge = EndpointJudge(base, "judge", api_key_env="", timeout=30)
    item = JudgeItem(CAPTION, CAPTION, "Location")
    body = judge.request(item, "expected", 1)
    client = httpx.Client()
    runs = {
        "urllib, no checks (before)": lambda: _urllib_post(judge.url, body),
        "httpx, no checks": lambda: client.post(judge.url, json=body).json(),
        "EndpointJudge.answer (now)": lambda: judge.answer(item, "expected"),
    }
    assert judge.answer(item, "expected").startswith("Score: ")
    print(f"stub server on 127.0.0.1 (TCP_NODELAY {'on' if NODELAY_SERVER else 'off'}), reply {len(REPLY)} bytes, request {len(json.dumps(body))} bytes; "
          f"{args.requests} requests x {args.repeat} runs, median per request:")
    for name, run in runs.items():
        run()  # warm the connection
        print(f"  {name:32s} {_per_request(run, args.requests, args.repeat) * 1e3:8.3f} ms")

    where = "endpoint bench"

    def checks():
        reply = parse_reply(REPLY, where)
        chosen, top = first_token_top_logprobs(reply, where)
        check_top_logprobs([chosen])
        return expected_from_top_logprobs(top)

    n = 5000
    plain = min(timeit.repeat(lambda: json.loads(REPLY.decode("utf-8")), number=n, repeat=3)) / n
    checked = min(timeit.repeat(checks, number=n, repeat=3)) / n
    escape = min(timeit.repeat(lambda: escape_control_syntax(CAPTION), number=n, repeat=3)) / n
    print("without network, per reply / caption (best of 3 x 5000):")
    print(f"  json.loads alone                 {plain * 1e6:8.1f} us")
    print(f"  strict parse + shape + logprobs  {checked * 1e6:8.1f} us  (+{(checked - plain) * 1e6:.1f} us)")
    print(f"  escape one {len(CAPTION)}-char caption     {escape * 1e6:8.1f} us")
    judge.client.close()
    client.close()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
