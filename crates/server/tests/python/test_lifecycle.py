"""Disconnects cancel generation and free the KV cache at once; deadlines end requests;
SIGTERM stops accepting, lets in-flight requests finish within the grace period, exits 0."""

import json
import signal
import socket
import threading
import time

import httpx
import pytest

from conftest import MODEL

LONG = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Write a very long story about the sea."}],
    "max_tokens": 1500,
    "temperature": 0.8,
    "seed": 3,
}


def generated(server):
    return server.model_metric("slm_generated_tokens_total")


def wait_running(server, n, timeout=30):
    deadline = time.monotonic() + timeout
    while server.model_metric("slm_running_sequences") < n:
        assert time.monotonic() < deadline, "the request never started"
        time.sleep(0.02)


def test_disconnect_mid_stream_cancels(fresh):
    server = fresh("disconnect-stream")
    before = generated(server)
    with httpx.stream(
        "POST", server.url("/v1/chat/completions"), json={**LONG, "stream": True}, timeout=60
    ) as response:
        for i, _ in enumerate(response.iter_lines()):
            if i > 6:
                break
    server.wait_idle(timeout=5)
    spent = generated(server) - before
    assert spent < 200, f"{spent} tokens generated after the client left"


def test_disconnect_during_whole_request_cancels(fresh):
    server = fresh("disconnect-whole")
    before = generated(server)
    port = int(server.base.rsplit(":", 1)[1])
    body = json.dumps(LONG).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )
    wait_running(server, 1)
    sock.close()
    server.wait_idle(timeout=5)
    spent = generated(server) - before
    assert spent < 200, f"{spent} tokens generated after the client left"


def test_disconnect_while_queued_leaves_the_queue(fresh):
    server = fresh("disconnect-queued", flags=("--parallel", "1"))
    first = httpx.stream("POST", server.url("/v1/chat/completions"), json={**LONG, "stream": True}, timeout=60)
    response = first.__enter__()
    try:
        wait_running(server, 1)
        with httpx.stream(
            "POST", server.url("/v1/chat/completions"), json={**LONG, "stream": True}, timeout=60
        ) as queued:
            lines = queued.iter_lines()
            next(lines)  # the role chunk comes at once, before admission
            deadline = time.monotonic() + 10
            while server.model_metric("slm_queue_depth") < 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        deadline = time.monotonic() + 5
        while server.model_metric("slm_queue_depth") > 0:
            assert time.monotonic() < deadline, "the abandoned request is still queued"
            time.sleep(0.02)
        assert server.model_metric("slm_running_sequences") == 1
    finally:
        first.__exit__(None, None, None)
    server.wait_idle(timeout=5)


def test_request_timeout_ends_generation(fresh):
    server = fresh("timeout", flags=("--request-timeout", "1"))
    start = time.monotonic()
    reply = httpx.post(server.url("/v1/chat/completions"), json=LONG, timeout=60).json()
    elapsed = time.monotonic() - start
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] < LONG["max_tokens"]
    assert elapsed < 30


def test_sigterm_finishes_in_flight_then_exits_zero(fresh):
    server = fresh("sigterm", flags=("--shutdown-grace", "3"))
    results = {}

    def short():
        body = {**LONG, "max_tokens": 20, "temperature": 0}
        results["short"] = httpx.post(server.url("/v1/chat/completions"), json=body, timeout=60)

    def long_stream():
        text = []
        with httpx.stream(
            "POST", server.url("/v1/chat/completions"), json={**LONG, "max_tokens": 100000, "stream": True}, timeout=60
        ) as response:
            for line in response.iter_lines():
                text.append(line)
        results["long"] = text

    threads = [threading.Thread(target=long_stream), threading.Thread(target=short)]
    threads[0].start()
    wait_running(server, 1)
    threads[1].start()
    wait_running(server, 2)
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url("/health"), timeout=5)
    for t in threads:
        t.join(timeout=60)
    code = server.process.wait(timeout=30)
    took = time.monotonic() - sent
    assert code == 0, server.log_path.read_text()
    assert took < 15, f"took {took:.1f} s to stop"
    short_reply = results["short"].json()
    assert short_reply["choices"][0]["finish_reason"] == "length", short_reply
    long_lines = [l for l in results["long"] if l]
    assert long_lines[-1] == "data: [DONE]"
    assert any("shutting down" in l for l in long_lines), long_lines[-3:]
