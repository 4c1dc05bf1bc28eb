"""Fixtures of the slm serve suite: the real binary, started on a free loopback port.

Run by scripts/test-serve.sh. The binary is $SLM_BIN (default target/release/slm); models come
from the store ($SLM_HOME), pulled by scripts/test.sh. Each server's log goes to
target/serve-test/logs/.
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[4]
SLM = os.environ.get("SLM_BIN") or str(ROOT / "target" / "release" / "slm")
ARTIFACTS = ROOT / "target" / "serve-test"
# The smallest catalog model keeps the suite fast; the greedy check also runs on it.
MODEL = "smollm2:135m"
CHAT_MODEL = "qwen2.5-coder:0.5b"


class Server:
    """One `slm serve` process on 127.0.0.1 with a free port."""

    def __init__(self, name, models=(MODEL,), flags=(), env=None):
        ARTIFACTS.joinpath("logs").mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / "logs" / f"{name}.log"
        self.log = open(self.log_path, "wb")
        command = [SLM, "serve", *models, "--port", "0", *flags]
        full_env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        full_env.pop("SLM_API_KEY", None)
        full_env.update(env or {})
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=self.log, env=full_env
        )
        self.base = self._wait_listening()
        self.models = list(models)

    def _wait_listening(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            match = re.search(r"listening on (http://[0-9.:]+)", text)
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                raise RuntimeError(f"slm serve exited early:\n{text}")
            time.sleep(0.05)
        raise RuntimeError("slm serve did not start listening")

    def url(self, path):
        return self.base + path

    def wait_ready(self, timeout=120, headers=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, _ = self.get("/ready", headers=headers)
            if status == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"not ready after {timeout} s:\n{self.log_path.read_text()}")

    def get(self, path, headers=None):
        """(status, body text) of a GET."""
        request = urllib.request.Request(self.url(path), headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def metrics(self):
        """The Prometheus samples as {name{labels}: value}."""
        _, text = self.get("/metrics")
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def model_metric(self, name, model=None):
        return self.metrics()[f'{name}{{model="{model or self.models[0]}"}}']

    def wait_idle(self, timeout=15):
        """Waits until no sequence runs or waits and every KV block is free."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            label = f'{{model="{self.models[0]}"}}'
            busy = (
                m[f"slm_running_sequences{label}"],
                m[f"slm_queue_depth{label}"],
                m[f"slm_kv_blocks_used{label}"],
            )
            if busy == (0, 0, 0):
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"still busy (running, queued, kv used) = {busy}")
            time.sleep(0.05)

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` and returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
            raise AssertionError(f"slm serve did not stop within {timeout} s")
        finally:
            self.log.close()
        return code


def start(name, models=(MODEL,), flags=(), env=None, ready=True):
    server = Server(name, models, flags, env)
    if ready:
        server.wait_ready(headers={"Authorization": f"Bearer {env['SLM_API_KEY']}"} if env and "SLM_API_KEY" in env else None)
    return server


@pytest.fixture(scope="session")
def server():
    """The shared server: smollm2 (default) and qwen2.5-coder 0.5b, 8 sequences at once."""
    s = start("shared", models=(MODEL, CHAT_MODEL), flags=("--parallel", "8", "--ctx", "2048"))
    yield s
    assert s.stop() == 0, s.log_path.read_text()


@pytest.fixture
def fresh():
    """Starts servers with special flags; each is stopped (and must exit 0) after the test."""
    started = []

    def make(name, **kwargs):
        s = start(name, **kwargs)
        started.append(s)
        return s

    yield make
    for s in started:
        code = s.stop()
        assert code == 0, f"exit code {code}:\n{s.log_path.read_text()}"


def post_json(url, body, headers=None, timeout=120):
    """(status, headers, parsed JSON or text) of a POST."""
    data = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else body
    if isinstance(data, str):
        data = data.encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
            status, got_headers = response.status, response.headers
    except urllib.error.HTTPError as err:
        text = err.read().decode()
        status, got_headers = err.code, err.headers
    try:
        return status, got_headers, json.loads(text)
    except json.JSONDecodeError:
        return status, got_headers, text
