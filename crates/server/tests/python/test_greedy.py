"""Greedy text through the server equals `slm run --raw --temp 0 -n 32`, alone and while
seven other requests share the batch."""

import subprocess
import threading

import httpx
import pytest

from conftest import CHAT_MODEL, MODEL, SLM

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
]
OTHERS = [
    "Once upon a time",
    "The three primary colors are",
    "import numpy as np\n",
    "In 1492, Columbus",
    "A haiku about autumn:",
    "SELECT name FROM",
    "The quick brown fox",
]


def slm_run(model, prompt):
    out = subprocess.run(
        [SLM, "run", model, "--raw", "--temp", "0", "-n", "32", prompt],
        capture_output=True, check=True,
    )
    return out.stdout.decode()


def complete(server, model, prompt):
    reply = httpx.post(
        server.url("/v1/completions"),
        json={"model": model, "prompt": prompt, "max_tokens": 32, "temperature": 0},
        timeout=120,
    ).json()
    return reply["choices"][0]["text"]


@pytest.mark.parametrize("model", [MODEL, CHAT_MODEL])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_alone_equals_slm_run(server, model, prompt):
    assert complete(server, model, prompt) == slm_run(model, prompt)


@pytest.mark.parametrize("model", [MODEL, CHAT_MODEL])
def test_greedy_in_a_batch_of_eight_equals_slm_run(server, model):
    prompt = PROMPTS[0]
    expected = slm_run(model, prompt)
    started = threading.Barrier(len(OTHERS) + 1)
    errors = []

    def other(text):
        body = {"model": model, "prompt": text, "max_tokens": 96, "temperature": 0.7,
                "seed": 1, "stream": True}
        try:
            with httpx.stream("POST", server.url("/v1/completions"), json=body, timeout=120) as r:
                lines = r.iter_lines()
                for line in lines:
                    if line.startswith("data: {"):
                        break
                started.wait(timeout=60)
                for _ in lines:
                    pass
        except Exception as err:  # reported below
            errors.append(err)
            started.abort()

    threads = [threading.Thread(target=other, args=(t,)) for t in OTHERS]
    for t in threads:
        t.start()
    # Every other request is generating before ours is submitted.
    started.wait(timeout=60)
    running = server.model_metric("slm_running_sequences", model)
    got = complete(server, model, prompt)
    for t in threads:
        t.join()
    assert not errors, errors
    assert running >= 7, f"only {running} sequences were running"
    assert got == expected
