"""The OpenAI API driven by the official `openai` package."""

import base64
import json
import math
import struct
import subprocess
import urllib.request

import openai
import pytest

from conftest import CHAT_MODEL, MODEL, SLM, post_json
from schemas import CHAT_CHUNK, CHAT_COMPLETION, EMBEDDINGS, TEXT_COMPLETION, check

HELLO = [{"role": "user", "content": "Write one sentence about the sea."}]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0)


def test_models_lists_every_served_model(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == [MODEL, CHAT_MODEL]


def test_chat(client, server):
    reply = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, temperature=0)
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "length"
    assert reply.usage.completion_tokens == 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 8
    assert reply.model == MODEL
    status, _, raw = post_json(
        server.url("/v1/chat/completions"), {"messages": HELLO, "max_tokens": 3}
    )
    assert status == 200
    check(raw, CHAT_COMPLETION)
    assert raw["model"] == MODEL, "no model named: the first is the default"


def test_second_model_is_served(client):
    reply = client.chat.completions.create(
        model=CHAT_MODEL, messages=HELLO, max_tokens=4, temperature=0
    )
    assert reply.model == CHAT_MODEL
    assert reply.usage.completion_tokens == 4


def test_chat_stream_matches_whole_reply(client, server):
    whole = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=12, temperature=0
    )
    stream = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=12, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage, roles = [], None, None, []
    for chunk in stream:
        check(chunk.model_dump(exclude_unset=True), CHAT_CHUNK)
        if chunk.usage is not None:
            assert chunk.choices == [], "the usage chunk has no choices"
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.role:
                roles.append(choice.delta.role)
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert roles == ["assistant"]
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == "length"
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


def test_raw_stream_ends_with_done(server):
    body = json.dumps({"messages": HELLO, "max_tokens": 3, "stream": True}).encode()
    request = urllib.request.Request(
        server.url("/v1/chat/completions"), data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = response.read().decode().split("\n\n")
    events = [e for e in events if e]
    assert all(e.startswith("data: ") for e in events), events
    assert events[-1] == "data: [DONE]"
    for event in events[:-1]:
        check(json.loads(event[len("data: "):]), CHAT_CHUNK)
        assert '"usage"' not in event, "usage only when stream_options asks"


def test_completions_and_stream(client):
    whole = client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0
    )
    check(whole.model_dump(), TEXT_COMPLETION)
    text = whole.choices[0].text
    assert text
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0,
            stream=True,
        )
        if c.choices
    )
    assert streamed == text


def test_completion_default_is_sixteen_tokens(client):
    reply = client.completions.create(model=MODEL, prompt="Once upon a time", temperature=0)
    assert reply.usage.completion_tokens <= 16
    if reply.choices[0].finish_reason == "length":
        assert reply.usage.completion_tokens == 16


def test_stop_sequences(client):
    prompt = "Count: 1, 2, 3, 4,"
    free = client.completions.create(model=MODEL, prompt=prompt, max_tokens=24, temperature=0)
    text = free.choices[0].text
    assert len(text) > 6, text
    stop = text[3:6]
    for stop_param in (stop, [stop, "never appears"]):
        stopped = client.completions.create(
            model=MODEL, prompt=prompt, max_tokens=24, temperature=0, stop=stop_param
        )
        assert stopped.choices[0].text == text[: text.index(stop)]
        assert stopped.choices[0].finish_reason == "stop"
        streamed = "".join(
            c.choices[0].text
            for c in client.completions.create(
                model=MODEL, prompt=prompt, max_tokens=24, temperature=0, stop=stop_param,
                stream=True,
            )
            if c.choices
        )
        assert streamed == stopped.choices[0].text


def test_seeds_make_sampling_reproducible(client):
    def sample(seed):
        reply = client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=16, temperature=1.0, seed=seed
        )
        return reply.choices[0].message.content

    assert sample(1234) == sample(1234)
    texts = {sample(seed) for seed in range(4)}
    assert len(texts) > 1, "different seeds differ at temperature 1"


def test_n_choices(client):
    reply = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=5, temperature=1.0, n=3, seed=7
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert reply.usage.completion_tokens == sum(5 for _ in reply.choices)
    again = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=5, temperature=1.0, n=3, seed=7
    )
    assert [c.message.content for c in again.choices] == [c.message.content for c in reply.choices]
    stream = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=5, temperature=1.0, n=3, seed=7, stream=True
    )
    texts = ["", "", ""]
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == [c.message.content for c in reply.choices]


def test_penalties_are_accepted(client):
    reply = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=8, temperature=0,
        presence_penalty=1.5, frequency_penalty=1.0, top_p=0.5,
    )
    assert reply.usage.completion_tokens > 0


def test_chat_logprobs(client):
    reply = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3
    )
    content = reply.choices[0].logprobs.content
    assert len(content) in (reply.usage.completion_tokens, reply.usage.completion_tokens - 1)
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for token in content:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 3
        # Greedy: the chosen token is the most probable one.
        assert token.top_logprobs[0].token == token.token
        assert math.isclose(token.top_logprobs[0].logprob, token.logprob, abs_tol=1e-5)
        assert bytes(token.bytes) == token.token.encode()
        probs = [t.logprob for t in token.top_logprobs]
        assert probs == sorted(probs, reverse=True)
    streamed = []
    for chunk in client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=8, temperature=0, logprobs=True,
        top_logprobs=3, stream=True,
    ):
        for choice in chunk.choices:
            if choice.logprobs:
                streamed.extend(choice.logprobs.content)
    assert [t.token for t in streamed] == [t.token for t in content]


def test_completion_logprobs(client):
    prompt = "The capital of France is"
    reply = client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=5, temperature=0, logprobs=2
    )
    lp = reply.choices[0].logprobs
    n = len(lp.tokens)
    assert n >= 1
    assert len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == n
    assert "".join(lp.tokens) == reply.choices[0].text
    assert lp.text_offset[0] == len(prompt)
    for i in range(1, n):
        assert lp.text_offset[i] == lp.text_offset[i - 1] + len(lp.tokens[i - 1])
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert 1 <= len(top) <= 2
        assert max(top.values()) == pytest.approx(logprob, abs=1e-5)


def test_token_prompts(client, server):
    text = client.completions.create(
        model=MODEL, prompt="Hello", max_tokens=4, temperature=0
    ).choices[0].text
    # The ids `slm tokenize` gives (BOS as the model says) are the prompt the text becomes.
    ids = json.loads(subprocess.run(
        [SLM, "tokenize", MODEL, "Hello"], capture_output=True, check=True, text=True
    ).stdout)
    by_ids = client.completions.create(model=MODEL, prompt=ids, max_tokens=4, temperature=0)
    assert by_ids.choices[0].text == text
    two = client.completions.create(
        model=MODEL, prompt=["Hello", "Hello"], max_tokens=4, temperature=0
    )
    assert [c.text for c in two.choices] == [text, text]
    assert [c.index for c in two.choices] == [0, 1]
    assert two.usage.prompt_tokens == 2 * by_ids.usage.prompt_tokens


def _norm(v):
    return math.sqrt(sum(x * x for x in v))


def test_embeddings(client, server):
    reply = client.embeddings.create(model=MODEL, input=["the sea", "the ocean", "the sea"])
    vectors = [d.embedding for d in reply.data]
    assert [d.index for d in reply.data] == [0, 1, 2]
    assert len({len(v) for v in vectors}) == 1 and len(vectors[0]) > 0
    for v in vectors:
        assert _norm(v) == pytest.approx(1.0, abs=1e-3)
    assert vectors[0] == pytest.approx(vectors[2], abs=1e-5), "same text, same vector"
    assert reply.usage.prompt_tokens > 0
    # The package asks for base64; plain floats must be the same numbers.
    status, _, raw = post_json(
        server.url("/v1/embeddings"), {"model": MODEL, "input": "the sea", "encoding_format": "float"}
    )
    assert status == 200
    check(raw, EMBEDDINGS)
    assert raw["data"][0]["embedding"] == pytest.approx(vectors[0], abs=1e-6)
    status, _, raw = post_json(
        server.url("/v1/embeddings"), {"input": "the sea", "encoding_format": "base64"}
    )
    blob = base64.b64decode(raw["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(blob) // 4}f", blob)
    assert decoded == pytest.approx(vectors[0], abs=1e-6)
    single = client.embeddings.create(model=MODEL, input="the sea").data[0].embedding
    assert single == pytest.approx(vectors[0], abs=1e-5)


def test_embeddings_of_token_ids(client):
    ids = json.loads(subprocess.run(
        [SLM, "tokenize", MODEL, "the sea"], capture_output=True, check=True, text=True
    ).stdout)
    by_text = client.embeddings.create(model=MODEL, input="the sea").data[0].embedding
    by_ids = client.embeddings.create(model=MODEL, input=ids).data[0].embedding
    assert by_ids == pytest.approx(by_text, abs=1e-5)
    two = client.embeddings.create(model=MODEL, input=[ids, ids]).data
    assert len(two) == 2 and two[1].embedding == pytest.approx(by_text, abs=1e-5)
