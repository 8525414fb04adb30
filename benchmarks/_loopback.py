"""What the benchmarks share: the key they send, a registry for the scripted server, the server in a process of its own."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import TYPE_CHECKING, Iterator

import httpx

from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.providers.registry import ProviderRegistry

if TYPE_CHECKING:  # pragma: no cover
    from codetether_magics.testing import Turn

KEY = "sk-bench-not-secret"


def openai_registry(base_url: str, client: httpx.AsyncClient) -> ProviderRegistry:
    """The real OpenAI provider at ``base_url`` (the scripted loopback server), default model "bench"."""
    registry = ProviderRegistry(environ={})
    registry.register(OpenAIProvider("openai", KEY, base_url, http_client=client), default_model="bench")
    return registry


class ServerProcess:
    """The scripted server's CLI in a subprocess; turns are queued over its control endpoint."""

    def __init__(self, process: subprocess.Popen, url: str) -> None:
        self.process = process
        self.url = url
        self.openai_base_url = url + "/v1"

    def enqueue(self, *turns: "Turn") -> None:
        httpx.post(self.url + "/_scripted/turns", json=[t.to_dict() for t in turns], timeout=10).raise_for_status()


@contextlib.contextmanager
def server_process() -> Iterator["ServerProcess"]:
    command = [sys.executable, "-m", "codetether_magics.testing.scripted_server"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()  # the CLI prints its URL first
        if not url.startswith("http"):
            raise RuntimeError(f"scripted server did not start (printed {url!r})")
        yield ServerProcess(process, url)
    finally:
        process.terminate()
        process.wait(timeout=10)
