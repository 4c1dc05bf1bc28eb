"""The Ollama API driven by the official `ollama` package."""

import json
import urllib.request

import ollama
import pytest

from conftest import CHAT_MODEL, MODEL, post_json
from schemas import OLLAMA_FINAL, check

GREEDY = {"temperature": 0, "num_predict": 8}
MESSAGES = [{"role": "user", "content": "Write one sentence about the sea."}]


@pytest.fixture(scope="module")
def client(server):
    return ollama.Client(host=server.base)


def test_listings(client):
    names = [m.model for m in client.list().models]
    assert names == [MODEL, CHAT_MODEL]
    assert client.list().models[0].details.format == "gguf"
    running = [m.model for m in client.ps().models]
    assert running == [MODEL, CHAT_MODEL]
    shown = client.show(MODEL)
    assert shown.details.family == "llama"
    assert shown.modelinfo["general.architecture"] == "llama"


def test_version(server):
    status, body = server.get("/api/version")
    assert status == 200 and json.loads(body)["version"]


def test_chat_whole_and_streamed(client, server):
    whole = client.chat(model=MODEL, messages=MESSAGES, stream=False, options=GREEDY)
    assert whole.message.role == "assistant"
    assert whole.message.content
    assert whole.done and whole.done_reason == "length"
    assert whole.eval_count == 8
    assert whole.prompt_eval_count > 0
    assert whole.total_duration > 0 and whole.eval_duration > 0
    parts = list(client.chat(model=MODEL, messages=MESSAGES, stream=True, options=GREEDY))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content for p in parts) == whole.message.content
    status, _, raw = post_json(
        server.url("/api/chat"),
        {"model": MODEL, "messages": MESSAGES, "stream": False, "options": GREEDY},
    )
    check(raw, OLLAMA_FINAL)


def test_chat_streams_ndjson_by_default(server):
    body = json.dumps({"model": MODEL, "messages": MESSAGES, "options": GREEDY}).encode()
    request = urllib.request.Request(server.url("/api/chat"), data=body)
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"] == "application/x-ndjson"
        lines = response.read().decode().splitlines()
    objects = [json.loads(line) for line in lines]
    assert len(objects) >= 2
    check(objects[-1], OLLAMA_FINAL)
    assert all(o["done"] is False and "message" in o for o in objects[:-1])


def test_generate_raw_and_templated(client):
    raw = client.generate(model=MODEL, prompt="The capital of France is", raw=True, options=GREEDY)
    assert raw.response and raw.done
    streamed = "".join(
        p.response
        for p in client.generate(
            model=MODEL, prompt="The capital of France is", raw=True, options=GREEDY, stream=True
        )
    )
    assert streamed == raw.response
    templated = client.generate(
        model=MODEL, prompt="Write one sentence about the sea.", system="Be brief.",
        options=GREEDY,
    )
    assert templated.response and templated.eval_count == 8


def test_generate_stop_and_seed(client):
    free = client.generate(
        model=MODEL, prompt="Count: 1, 2, 3, 4,", raw=True, options={"temperature": 0, "num_predict": 16}
    ).response
    stop = free[3:5]
    stopped = client.generate(
        model=MODEL, prompt="Count: 1, 2, 3, 4,", raw=True,
        options={"temperature": 0, "num_predict": 16, "stop": [stop]},
    )
    assert stopped.response == free[: free.index(stop)]
    assert stopped.done_reason == "stop"
    seeded = [
        client.generate(
            model=MODEL, prompt="Once upon a time", raw=True,
            options={"temperature": 1.0, "seed": 99, "num_predict": 12},
        ).response
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_empty_prompt_loads(client):
    loaded = client.generate(model=MODEL, prompt="")
    assert loaded.done and loaded.done_reason == "load"


def test_embed(client):
    reply = client.embed(model=MODEL, input=["the sea", "the ocean"])
    assert len(reply.embeddings) == 2
    assert reply.prompt_eval_count > 0
    one = client.embed(model=MODEL, input="the sea")
    assert one.embeddings[0] == pytest.approx(reply.embeddings[0], abs=1e-5)
    legacy = client.embeddings(model=MODEL, prompt="the sea")
    assert list(legacy.embedding) == pytest.approx(reply.embeddings[0], abs=1e-5)


def test_errors(client):
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="nonexistent:1b", messages=MESSAGES)
    assert err.value.status_code == 404
    assert "nonexistent:1b" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        client.generate(model=MODEL, prompt="x", options={"temperature": "hot"})
    assert err.value.status_code == 400
    assert "options.temperature" in err.value.error
