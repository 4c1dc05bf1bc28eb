"""The prefix cache: a repeated long system prompt is served from cached KV blocks (as
/metrics counts) and greedy answers are the same as a server without the cache gives."""

import threading

import httpx

from conftest import MODEL

SYSTEM = (
    "You are a terse assistant for a software team. You can call these tools: "
    "read_file(path) returns a file's text; write_file(path, text) replaces a file; "
    "run(command) runs a shell command and returns its output; search(query) finds code. "
    "Answer in one short sentence. "
) * 4
QUESTIONS = ["What does ls do?", "What is a unit test?"]


def chat(server, question, usages=None):
    reply = httpx.post(
        server.url("/v1/chat/completions"),
        json={
            "model": MODEL,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": question},
            ],
            "max_tokens": 16,
            "temperature": 0,
        },
        timeout=120,
    ).json()
    if usages is not None:
        usages.append(reply["usage"])
    return reply["choices"][0]["message"]["content"]


def metric(server, name):
    return server.model_metric(name)


def test_repeated_system_prompt_hits_the_cache_and_answers_the_same(fresh):
    cached = fresh("prefix-cache", flags=("--parallel", "2"))
    plain = fresh("no-prefix-cache", flags=("--parallel", "2", "--no-prefix-cache"))
    usages = []
    answers = [chat(cached, q, usages) for q in QUESTIONS + QUESTIONS[:1]]
    assert answers == [chat(plain, q) for q in QUESTIONS + QUESTIONS[:1]]
    m = cached.wait_idle()
    label = f'{{model="{MODEL}"}}'
    assert m[f"slm_prefix_cache_lookups_total{label}"] == 3
    assert m[f"slm_prefix_cache_hits_total{label}"] == 2
    # The system prompt is over 100 tokens: at least three blocks of 32 each time.
    assert m[f"slm_prompt_tokens_cached_total{label}"] >= 2 * 96
    cached_tokens = [u["prompt_tokens_details"]["cached_tokens"] for u in usages]
    assert cached_tokens[0] == 0 and min(cached_tokens[1:]) >= 96, usages
    assert sum(cached_tokens) == m[f"slm_prompt_tokens_cached_total{label}"]
    assert m[f"slm_kv_blocks_cached{label}"] > 0
    assert m[f"slm_kv_blocks_free{label}"] == m[f"slm_kv_blocks_total{label}"]
    assert metric(plain, "slm_prompt_tokens_cached_total") == 0
    assert metric(plain, "slm_kv_blocks_cached") == 0


def test_concurrent_requests_share_the_system_prompt(fresh):
    cached = fresh("prefix-cache-concurrent", flags=("--parallel", "2"))
    answers = [None, None]

    def ask(i):
        answers[i] = chat(cached, QUESTIONS[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(answers)
    # One of the two evaluated the system prompt; the other took its blocks.
    assert metric(cached, "slm_prefix_cache_hits_total") == 1
    assert metric(cached, "slm_prompt_tokens_cached_total") >= 96
