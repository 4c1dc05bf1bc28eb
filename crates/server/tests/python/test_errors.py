"""Every refusal: status, OpenAI's error object, and what the official clients raise."""

import concurrent.futures
import json
import socket

import httpx
import ollama
import openai
import pytest

from conftest import MODEL, post_json
from schemas import OLLAMA_ERROR, OPENAI_ERROR, check

MESSAGES = [{"role": "user", "content": "Write a long story about the sea."}]


def client_for(server, key="unused"):
    return openai.OpenAI(base_url=server.url("/v1"), api_key=key, max_retries=0)


def test_unknown_model_is_404(server):
    with pytest.raises(openai.NotFoundError) as err:
        client_for(server).chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert err.value.code == "model_not_found"
    status, _, body = post_json(server.url("/v1/completions"), {"model": "gpt-9", "prompt": "x"})
    assert status == 404
    check(body, OPENAI_ERROR)


def test_wrong_types_are_400_naming_the_field(server):
    cases = [
        ({"messages": MESSAGES, "temperature": "hot"}, "temperature"),
        ({"messages": MESSAGES, "max_tokens": -3}, "max_tokens"),
        ({"messages": MESSAGES, "stop": [1, 2]}, "stop"),
        ({"messages": [{"role": "user", "content": 1}]}, "messages[0].content"),
        ({"messages": "hello"}, "messages"),
    ]
    for body, field in cases:
        status, _, reply = post_json(server.url("/v1/chat/completions"), body)
        assert status == 400, (body, reply)
        check(reply, OPENAI_ERROR)
        assert reply["error"]["type"] == "invalid_request_error"
        assert reply["error"]["param"] == field
        assert field in reply["error"]["message"]
    status, _, reply = post_json(server.url("/v1/chat/completions"), b"{not json")
    assert status == 400
    check(reply, OPENAI_ERROR)
    with pytest.raises(openai.BadRequestError) as err:
        client_for(server).chat.completions.create(model=MODEL, messages=MESSAGES, n=0)
    assert err.value.param == "n"


def test_prompt_longer_than_context_is_400(fresh):
    server = fresh("small-ctx", flags=("--ctx", "64"))
    long_prompt = "the sea " * 100
    with pytest.raises(openai.BadRequestError) as err:
        client_for(server).completions.create(model=MODEL, prompt=long_prompt, max_tokens=4)
    message = err.value.body["message"]
    assert "64" in message and "context" in message, message
    status, _, reply = post_json(
        server.url("/v1/chat/completions"),
        {"messages": [{"role": "user", "content": long_prompt}]},
    )
    assert status == 400 and "64" in reply["error"]["message"]
    with pytest.raises(ollama.ResponseError) as err:
        ollama.Client(host=server.base).generate(model=MODEL, prompt=long_prompt, raw=True)
    assert err.value.status_code == 400
    # Both lengths are stated: the prompt's token count too.
    import re
    counts = [int(n) for n in re.findall(r"\d+", message)]
    assert any(n > 64 for n in counts), message


def test_full_queue_is_429_with_retry_after(fresh):
    server = fresh("tiny-queue", flags=("--max-queue", "1", "--parallel", "1"))
    body = {"messages": MESSAGES, "max_tokens": 150, "temperature": 0}

    def one(_):
        with httpx.Client(timeout=120) as http:
            response = http.post(server.url("/v1/chat/completions"), json=body)
            return response.status_code, response.headers.get("retry-after"), response.json()

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    statuses = sorted(r[0] for r in results)
    assert statuses.count(429) >= 1, statuses
    assert set(statuses) <= {200, 429}, statuses
    for status, retry_after, reply in results:
        if status == 429:
            check(reply, OPENAI_ERROR)
            assert retry_after is not None and int(retry_after) >= 1
            assert reply["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.RateLimitError):
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(
                    client_for(server).chat.completions.create,
                    model=MODEL, messages=MESSAGES, max_tokens=150,
                )
                for _ in range(4)
            ]
            for f in futures:
                f.result()
    server.wait_idle(timeout=60)


def test_api_key(fresh):
    server = fresh("keyed", flags=("--api-key", "k3y"))
    with pytest.raises(openai.AuthenticationError) as err:
        client_for(server, "wrong").models.list()
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"
    assert [m.id for m in client_for(server, "k3y").models.list().data] == [MODEL]
    reply = client_for(server, "k3y").chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=2
    )
    assert reply.usage.completion_tokens == 2
    with pytest.raises(ollama.ResponseError) as err:
        ollama.Client(host=server.base).list()
    assert err.value.status_code == 401
    keyed = ollama.Client(host=server.base, headers={"Authorization": "Bearer k3y"})
    assert [m.model for m in keyed.list().models] == [MODEL]
    status, _, body = post_json(server.url("/api/chat"), {"messages": MESSAGES})
    assert status == 401
    check(body, OLLAMA_ERROR)
    assert server.get("/health")[0] == 200
    assert server.get("/metrics")[0] == 401
    assert server.get("/metrics", headers={"Authorization": "Bearer k3y"})[0] == 200


def test_key_from_the_environment(fresh):
    server = fresh("keyed-env", env={"SLM_API_KEY": "from-env"})
    assert server.get("/v1/models")[0] == 401
    assert server.get("/v1/models", headers={"Authorization": "Bearer from-env"})[0] == 200


def test_body_over_the_limit_is_413(fresh):
    server = fresh("small-body", flags=("--max-body", "1000"))
    with pytest.raises(openai.APIStatusError) as err:
        client_for(server).completions.create(model=MODEL, prompt="x" * 2000, max_tokens=1)
    assert err.value.status_code == 413
    status, _, body = post_json(server.url("/v1/completions"), {"prompt": "x" * 2000})
    assert status == 413
    check(body, OPENAI_ERROR)
    # A declared length over the limit is refused before the body is sent at all.
    with socket.create_connection(("127.0.0.1", int(server.base.rsplit(":", 1)[1]))) as sock:
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413"), head
    assert post_json(server.url("/v1/completions"), {"prompt": "hi", "max_tokens": 1})[0] == 200


def test_stream_errors_reach_the_client(server):
    """An unknown model on a streamed request is an error status, not a broken stream."""
    with pytest.raises(openai.NotFoundError):
        for _ in client_for(server).chat.completions.create(
            model="nope", messages=MESSAGES, stream=True
        ):
            pass


def test_a_conversation_the_template_rejects_is_400(fresh, tmp_path):
    template = tmp_path / "no-system.jinja"
    template.write_text(
        "{% for m in messages %}{% if m.role == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{{ m.content }}{% endfor %}"
    )
    s = fresh("chat-template", flags=("--chat-template", str(template)))
    body = {"messages": [{"role": "system", "content": "Be brief."}] + MESSAGES, "max_tokens": 1}
    status, _, reply = post_json(s.url("/v1/chat/completions"), body)
    assert status == 400, reply
    check(reply, OPENAI_ERROR)
    assert "System role not supported" in reply["error"]["message"]
    status, _, reply = post_json(s.url("/v1/chat/completions"), {"messages": MESSAGES, "max_tokens": 1})
    assert status == 200, reply
    status, _, shown = post_json(s.url("/api/show"), {"model": MODEL})
    assert status == 200 and shown["template"] == template.read_text(), shown
