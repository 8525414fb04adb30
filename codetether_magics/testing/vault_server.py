"""A loopback HashiCorp Vault speaking just enough of the HTTP API for the provider registry:
KV v2 list and read, token checks, Kubernetes login, and switches for faults.

    with VaultServer({"codetether/providers/openai": {"api_key": "sk-..."}}, token="root") as vault:
        environ = {"VAULT_ADDR": vault.url, "VAULT_TOKEN": "root"}
        vault.fail_next(403)      # the next secret request is refused once
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

from ._loopback import JSONHandler, LoopbackServer

__all__ = ["VaultRequest", "VaultServer"]


@dataclass(frozen=True)
class VaultRequest:
    method: str
    path: str
    token: str | None  # the X-Vault-Token header as sent


class _Handler(JSONHandler):
    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        if method == "GET" and parse_qs(parts.query).get("list") == ["true"]:
            method = "LIST"  # clients that cannot send LIST use GET ?list=true
        body = self.read_json()
        self.send_json(*self.owner.handle(method, parts.path, self.headers.get("X-Vault-Token"), body))

    def do_GET(self) -> None:
        self._serve("GET")

    def do_LIST(self) -> None:
        self._serve("LIST")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")


class VaultServer(LoopbackServer):
    handler = _Handler
    thread_name = "loopback-vault"

    def __init__(self, secrets: Mapping[str, Mapping[str, Any]] | None = None, *, mount: str = "secret",
                 token: str | None = "root-token", k8s_role: str | None = None, k8s_jwt: str | None = None,
                 auth_mount: str = "kubernetes", read_delay: float = 0.0, echo_token: bool = False) -> None:
        super().__init__()
        self.echo_token = echo_token  # a 403 quotes the token it was sent, as some proxies in front of Vault do
        self.mount = mount
        self.auth_mount = auth_mount
        self.k8s_role, self.k8s_jwt = k8s_role, k8s_jwt
        self.read_delay = read_delay  # seconds per secret read, to observe concurrent reads
        self._secrets = {k.strip("/"): dict(v) for k, v in (secrets or {}).items()}
        self._tokens = {token} if token else set()
        self._failures: list[int] = []
        self._requests: list[VaultRequest] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self._issued = itertools.count(1)

    # -- test controls --------------------------------------------------------------------

    @property
    def requests(self) -> list[VaultRequest]:
        with self._lock:
            return list(self._requests)

    def put(self, path: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._secrets[path.strip("/")] = dict(data)

    def delete_data(self, path: str) -> None:
        """Keep ``path`` listed but answer 404 to reads (a deleted latest version)."""
        with self._lock:
            self._secrets[path.strip("/")] = None  # type: ignore[assignment]

    def fail_next(self, status: int = 403, count: int = 1) -> None:
        """Answer the next ``count`` secret requests (not logins) with ``status``."""
        with self._lock:
            self._failures.extend([status] * count)

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)

    # -- request handling -------------------------------------------------------------------

    def handle(self, method: str, path: str, token: str | None, body: Any) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._requests.append(VaultRequest(method, path, token))
        login_path = f"/v1/auth/{self.auth_mount}/login"
        if path == login_path and method == "POST":
            return self._login(body if isinstance(body, dict) else {})
        denied = {"errors": [f"permission denied for token {token}" if self.echo_token else "permission denied"]}
        with self._lock:
            if token not in self._tokens:
                return 403, denied
            if self._failures:
                status = self._failures.pop(0)
                return status, denied if status == 403 else {"errors": ["scripted failure"]}
        data_prefix, meta_prefix = f"/v1/{self.mount}/data/", f"/v1/{self.mount}/metadata/"
        if method == "LIST" and path.startswith(meta_prefix):
            return self._list(path[len(meta_prefix):].strip("/"))
        if method == "GET" and path.startswith(data_prefix):
            return self._read(path[len(data_prefix):].strip("/"))
        return 404, {"errors": []}

    def _login(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.k8s_role is None or body.get("role") != self.k8s_role:
            return 400, {"errors": [f"invalid role name \"{body.get('role')}\""]}
        if body.get("jwt") != self.k8s_jwt:
            return 403, {"errors": ["permission denied"]}
        token = f"k8s-token-{next(self._issued)}"
        with self._lock:
            self._tokens.add(token)
        return 200, {"auth": {"client_token": token, "accessor": "acc", "policies": ["default", "codetether"],
                              "lease_duration": 3600, "renewable": True}}

    def _list(self, folder: str) -> tuple[int, dict[str, Any]]:
        prefix = folder + "/" if folder else ""
        with self._lock:
            children = {p[len(prefix):].split("/")[0] + ("/" if "/" in p[len(prefix):] else "")
                        for p in self._secrets if p.startswith(prefix)}
        if not children:
            return 404, {"errors": []}
        return 200, {"data": {"keys": sorted(children)}}

    def _read(self, path: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            time.sleep(self.read_delay)
            with self._lock:
                data = self._secrets.get(path)
        finally:
            with self._lock:
                self._in_flight -= 1
        if data is None:
            return 404, {"errors": []}
        metadata = {"created_time": "2026-01-01T00:00:00Z", "deletion_time": "", "destroyed": False,
                    "version": 1, "custom_metadata": None}
        return 200, {"data": {"data": data, "metadata": metadata}, "lease_duration": 0, "renewable": False}
