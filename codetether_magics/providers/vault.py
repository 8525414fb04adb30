"""Provider records from HashiCorp Vault (KV v2), through hvac.

    VAULT_ADDR              the server (this module is only used when it is set)
    VAULT_TOKEN             a token (else ~/.vault-token, as the vault CLI does), or
    VAULT_ROLE              Kubernetes auth with this role: VAULT_AUTH_MOUNT (default "kubernetes"),
                            the service-account JWT from VAULT_K8S_SA_JWT_PATH
    VAULT_MOUNT             the KV v2 mount (default "secret")
    VAULT_SECRETS_PATH      where provider secrets live (default "codetether/providers")
    VAULT_NAMESPACE, VAULT_CACERT, VAULT_SKIP_VERIFY   as for the vault CLI

The path is listed for provider ids, then ``<path>/<id>`` is read for each, all reads at
once. 404 means no such provider. 403 logs in again once (a token may have expired or
been renewed), then raises ``ProviderAuthError``. An unreachable Vault is logged and
skipped, so the environment and config file still work. No token or key is ever put in
a message or a log line: every token (from ``VAULT_TOKEN``, ``~/.vault-token`` or a
Kubernetes login) and the service-account JWT are checked for control characters and
registered with ``redaction``, and Vault's own error texts (a 403 body may quote the
token) are scrubbed before they are shown.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import hvac
import hvac.exceptions
import requests

from .._env import env_flag
from ..errors import ProviderAuthError
from ..redaction import check_credential, redact, scrubbing_logger

__all__ = ["VaultSettings", "load_vault_records"]

log = scrubbing_logger(__name__)
T = TypeVar("T")

DEFAULT_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_REFUSED = (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)
_UNREACHABLE = (requests.exceptions.RequestException, hvac.exceptions.VaultError)


@dataclass(frozen=True)
class VaultSettings:
    address: str
    token: str | None = field(default=None, repr=False)
    role: str | None = None
    auth_mount: str = "kubernetes"
    jwt_path: str = DEFAULT_JWT_PATH
    mount: str = "secret"
    path: str = "codetether/providers"
    namespace: str | None = None
    verify: bool | str = True
    timeout: float = 10.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "VaultSettings":
        def get(name: str, default: str | None = None) -> str | None:
            return environ.get(name, "").strip() or default

        skip_verify = env_flag("VAULT_SKIP_VERIFY", environ)
        token = check_credential(environ.get("VAULT_TOKEN", ""), "VAULT_TOKEN")
        return cls(address=get("VAULT_ADDR", "").rstrip("/"), token=token, role=get("VAULT_ROLE"),
                   auth_mount=get("VAULT_AUTH_MOUNT", "kubernetes").strip("/"),
                   jwt_path=get("VAULT_K8S_SA_JWT_PATH", DEFAULT_JWT_PATH),
                   mount=get("VAULT_MOUNT", "secret").strip("/"),
                   path=get("VAULT_SECRETS_PATH", "codetether/providers").strip("/"),
                   namespace=get("VAULT_NAMESPACE"),
                   verify=False if skip_verify else (get("VAULT_CACERT") or True))

    @property
    def where(self) -> str:
        return f"{self.mount}/{self.path} at {self.address}"


class _VaultSession:
    """One login shared by concurrent reads; a refused call logs in again once and retries."""

    def __init__(self, settings: VaultSettings) -> None:
        self.settings = settings
        self._token: str | None = None
        self._lock = threading.Lock()

    def _client(self, token: str | None) -> hvac.Client:
        # One client per call: each has its own requests.Session, so reads can run on several threads.
        # Never None: hvac would then read VAULT_TOKEN from the real environment, not the one given.
        s = self.settings
        return hvac.Client(url=s.address, token=token or "", verify=s.verify, timeout=s.timeout,
                           namespace=s.namespace)

    def login(self) -> None:
        s = self.settings
        if not s.role:
            self._token = s.token or _token_file()
            return
        try:
            jwt = check_credential(Path(s.jwt_path).read_text(), f"the service-account token {s.jwt_path}") or ""
        except OSError as exc:
            raise ProviderAuthError(f"Vault Kubernetes login (VAULT_ROLE={s.role!r}) needs the service-account "
                                    f"token at {s.jwt_path}: {exc.strerror or exc}") from None
        try:
            answer = self._client("").auth.kubernetes.login(role=s.role, jwt=jwt, use_token=False,
                                                            mount_point=s.auth_mount)
        except (*_REFUSED, hvac.exceptions.InvalidRequest) as exc:
            raise ProviderAuthError(f"Vault Kubernetes login as role {s.role!r} at auth/{s.auth_mount} on "
                                    f"{s.address} was refused: {_reason(exc)}") from None
        self._token = check_credential(answer["auth"]["client_token"], "the Vault Kubernetes login's client_token")

    def call(self, operation: Callable[[hvac.Client], T]) -> T:
        used = self._token
        try:
            return operation(self._client(used))
        except _REFUSED:
            with self._lock:
                if self._token == used:  # concurrent callers share a single re-login
                    self.login()
        try:
            return operation(self._client(self._token))
        except _REFUSED as exc:
            raise ProviderAuthError(
                f"Vault refused access to {self.settings.where} ({_reason(exc)}) even after logging in again. "
                f"Check that the token (VAULT_TOKEN, or the Kubernetes role VAULT_ROLE) has a policy allowing "
                f"list on {self.settings.mount}/metadata/{self.settings.path} and read on "
                f"{self.settings.mount}/data/{self.settings.path}/*.") from None


def _token_file() -> str | None:
    try:
        text = (Path.home() / ".vault-token").read_text()
    except OSError:
        return None
    return check_credential(text, "~/.vault-token")


def _reason(exc: Exception) -> str:
    """Vault's own error text, scrubbed: a 403 body can quote the token it was sent."""
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors:
        return redact("; ".join(str(e) for e in errors))
    return type(exc).__name__


async def load_vault_records(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``{provider id: secret data}`` from Vault; {} (logged) when Vault cannot be reached."""
    settings = VaultSettings.from_environ(environ)
    if not (settings.token or settings.role or _token_file()):
        log.warning("VAULT_ADDR is set but neither VAULT_TOKEN nor VAULT_ROLE is: skipping Vault")
        return {}
    session = _VaultSession(settings)
    try:
        await asyncio.to_thread(session.login)
        names = await asyncio.to_thread(session.call, lambda c: _list(c, settings))
        secrets = await asyncio.gather(*(asyncio.to_thread(session.call, _reader(name, settings))
                                         for name in names))
    except ProviderAuthError:
        raise
    except _UNREACHABLE as exc:
        log.warning("Could not read provider secrets from %s (%s): using the environment and config file",
                    settings.where, _describe(exc))
        return {}
    records = {name: data for name, data in zip(names, secrets) if data is not None}
    log.info("Loaded %d provider(s) from Vault %s: %s", len(records), settings.where, ", ".join(records) or "none")
    return records


def _list(client: hvac.Client, settings: VaultSettings) -> list[str]:
    try:
        answer = client.secrets.kv.v2.list_secrets(path=settings.path, mount_point=settings.mount)
    except hvac.exceptions.InvalidPath:
        return []  # nothing stored there yet
    keys = (answer.get("data") or {}).get("keys") or []
    return [k for k in keys if isinstance(k, str) and not k.endswith("/")]  # "x/" is a folder


def _reader(name: str, settings: VaultSettings) -> Callable[[hvac.Client], dict[str, Any] | None]:
    def read(client: hvac.Client) -> dict[str, Any] | None:
        try:
            answer = client.secrets.kv.v2.read_secret_version(path=f"{settings.path}/{name}",
                                                             mount_point=settings.mount,
                                                             raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None  # 404: no such provider (listed, then deleted)
        data = ((answer.get("data") or {}).get("data")) or {}
        return dict(data) if isinstance(data, dict) else None

    return read


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.exceptions.RequestException):
        return f"cannot connect: {type(exc).__name__}"
    return f"{type(exc).__name__}: {_reason(exc)}"


