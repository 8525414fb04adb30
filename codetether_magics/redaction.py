"""Keeping credentials out of everything this package shows, saves or logs.

One rule for the whole package, in two halves:

- Known secrets: every credential a provider or Vault is configured with (API keys, EVERY
  header value of a provider, Vault tokens from ``VAULT_TOKEN``, ``~/.vault-token`` or a
  Kubernetes login) is added here with ``add_secret`` the moment it is read.
- Credential-like environment variables (``*API_KEY``, ``*_TOKEN``, ``*_SECRET``,
  ``*PASSWORD``): their values are secrets too, wherever they came from (a key the user
  put in ``os.environ`` that no provider uses still must not reach an output).

- Credentials in plain sight: a value written right after a credential-like name
  (``%env OPENAI_API_KEY=sk-...``, ``os.environ["GITHUB_TOKEN"] = "..."``, ``api_key="..."``,
  ``Authorization: Bearer ...``) and the shapes of well-known keys (``sk-...``, ``AKIA...``,
  ``ghp_...``). Nothing need hold them any more: a key replaced by the right one, or deleted from
  the environment after use, still sits in a cell's source, and the notebook context sends the
  cells' sources and outputs to the model.

``redact(text)`` replaces all of them. Servers echo keys in error bodies, a tool's output can
print ``os.environ``, and a Vault 403 body may quote the token: every error, event, output and
log line of the package passes through here (``ScrubbingFilter`` for log records).

``check_credential`` refuses a credential with control characters when it is read: a key with a
newline would split an HTTP header (or be silently cut by the HTTP library), and the error
names where the value came from, never the value.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Iterable, Mapping

from .errors import CredentialError

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "ScrubbingFilter", "add_secret", "check_credential", "known_secrets",
           "redact", "scrubbing_logger", "secret_values"]

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8  # shorter values would redact ordinary words ("true", "json") everywhere
_SECRET_NAME = re.compile(r"(API_KEY|_TOKEN|_SECRET|PASSWORD)$|^VAULT_TOKEN$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ASSIGNED = re.compile(  # NAME=VALUE, NAME: VALUE, ["NAME"] = "VALUE", Authorization: Bearer VALUE
    r"""(\b[\w-]*(?:api[_-]?key|token|secret|password|passwd|authorization)\b["']?\]?\s*[=:]\s*"""
    r"""["']?(?:bearer\s+|basic\s+|token\s+)?)(?!\[redacted\])([^\s"',;)}\]]{8,})""", re.IGNORECASE)
_KEY_SHAPES = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]{30,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}|glpat-[A-Za-z0-9_-]{20,})")

_lock = threading.Lock()
_known: set[str] = set()


def add_secret(value: str | None) -> None:
    """Remember ``value`` as a secret for the rest of the process (too short values are ignored)."""
    if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _known.add(value)


def known_secrets() -> frozenset[str]:
    with _lock:
        return frozenset(_known)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret to scrub: the known ones and credential-like environment values, longest first
    (so a key containing another is replaced whole)."""
    environ = os.environ if environ is None else environ
    values = {value for name, value in environ.items() if _SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH}
    values |= known_secrets()
    return sorted(values, key=len, reverse=True)


def redact(text: str, environ: Mapping[str, str] | None = None, *, extra: Iterable[str | None] = ()) -> str:
    """``text`` with every secret (and each of ``extra``, at least 4 characters long) replaced by ``[redacted]``."""
    if not text:
        return text
    values = secret_values(environ) + sorted((e for e in extra if e and len(e) >= 4), key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _ASSIGNED.sub(lambda m: m.group(1) + REDACTED, text)
    return _KEY_SHAPES.sub(REDACTED, text)


def check_credential(value: str | None, source: str, *, secret: bool = True) -> str | None:
    """``value`` with surrounding whitespace removed, or an error naming ``source`` (never the value) when
    a control character (newline, CR, NUL, ...) is inside it. With ``secret`` (not for a header's name)
    the value is also remembered as a secret."""
    if value is None:
        return None
    stripped = value.strip()
    found = _CONTROL.search(stripped)
    if found:
        raise CredentialError(f"The credential in {source} contains a {_control_name(found.group())} at position "
                              f"{found.start() + 1}: refused, it would corrupt the request. Copy the key again "
                              "without it.")
    if secret:
        add_secret(stripped)
    return stripped or None


def _control_name(char: str) -> str:
    names = {"\n": "newline", "\r": "carriage return (CR)", "\x00": "NUL byte", "\t": "tab"}
    return names.get(char, f"control character U+{ord(char):04X}")


class ScrubbingFilter(logging.Filter):
    """A log filter that redacts a record's message (its arguments merged in) before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is the logging module's to report
            return True
        scrubbed = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # The traceback text is formatted later by the handler: render and scrub it here.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if scrubbed != message or record.args:
            record.msg, record.args = scrubbed, None
        return True


_FILTER = ScrubbingFilter()


def scrubbing_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the scrubbing filter on it (filters apply to one logger only,
    so each module that may log a credential-bearing text asks for its logger here)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
