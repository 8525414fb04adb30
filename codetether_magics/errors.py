"""Every exception codetether-magics raises, in one tree.

    CodeTetherError
    ├── SessionError
    │   ├── SessionNotFoundError        no file for that id
    │   ├── InvalidSessionIdError       id is not 1-128 chars of [A-Za-z0-9_-]
    │   ├── SessionCorruptError         the file is not a session (never overwritten)
    │   ├── SessionTooLargeError        the file is over the 512 MiB load limit
    │   ├── SessionIdMismatchError      the file's inner id is not the requested one
    │   └── SessionConflictError        another writer saved this session since we loaded it
    ├── ProviderError
    │   ├── ProviderNotFoundError       "Provider 'x' not found. Available: a, b"
    │   ├── NoProviderConfiguredError   nothing in Vault, the environment or the config file
    │   ├── ProviderAuthError           Vault refused us (after one re-login)
    │   ├── CredentialError             a key or token read from somewhere is unusable (control characters)
    │   ├── ProviderHTTPError           the model server answered with an error status
    │   │   └── ContextLengthError      ... because the request is longer than the model's context window
    │   ├── ProviderConnectionError     could not reach the server / timed out before any data
    │   ├── ProviderStreamError         malformed stream, or cut after data arrived
    │   └── ProviderTimeoutError        no data for the idle timeout, or a call past its total time limit
    ├── ContextBudgetError              the context window cannot hold even the system prompt and the newest
    │                                   message, or its setting is not a number of tokens
    ├── CostLimitError                  the next model call would pass the turn's cost limit
    ├── ToolError                       a tool failed; the message goes back to the model
    ├── McpError                        an MCP server could not start, timed out or stopped
    │   └── McpConfigError              the mcpServers file is wrong (names the file and the entry)
    └── ReplayError                     a replayed prompt has no recorded turn

Callers that want to show one friendly line write::

    try:
        result = await session.prompt("hello")
    except CodeTetherError as exc:
        print(exc)

No message in this tree ever contains an API key or a Vault token: providers build
their messages from the server's error text, never from request headers, and every
error leaving a provider passes through ``codetether_magics.redaction.redact``.
"""

from __future__ import annotations

__all__ = [
    "CodeTetherError",
    "ContextBudgetError",
    "ContextLengthError",
    "CostLimitError",
    "CredentialError",
    "InvalidSessionIdError",
    "McpConfigError",
    "McpError",
    "NoProviderConfiguredError",
    "ProviderAuthError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderNotFoundError",
    "ProviderStreamError",
    "ProviderTimeoutError",
    "ReplayError",
    "SessionConflictError",
    "SessionCorruptError",
    "SessionError",
    "SessionIdMismatchError",
    "SessionNotFoundError",
    "SessionTooLargeError",
    "ToolError",
]


class CodeTetherError(Exception):
    """Base class of every error this package raises on purpose."""


# -- sessions -----------------------------------------------------------------


class SessionError(CodeTetherError):
    """A session could not be found, read or written."""


class SessionNotFoundError(SessionError):
    pass


class InvalidSessionIdError(SessionError, ValueError):
    pass


class SessionCorruptError(SessionError):
    pass


class SessionTooLargeError(SessionError):
    pass


class SessionIdMismatchError(SessionError):
    pass


class SessionConflictError(SessionError):
    pass


# -- providers ----------------------------------------------------------------


class ProviderError(CodeTetherError):
    """A model provider could not be configured or did not answer properly."""


class ProviderNotFoundError(ProviderError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NoProviderConfiguredError(ProviderError):
    pass


class ProviderAuthError(ProviderError):
    pass


class CredentialError(ProviderError):
    """A key, token or credential header read from the environment, a config file or Vault is unusable
    (a newline, CR, NUL or other control character inside it). The message names the source, never the value."""


class ProviderHTTPError(ProviderError):
    """The server answered ``status_code``; ``message`` is the provider's own error text."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        provider: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.provider = provider
        self.retry_after = retry_after
        where = f"{provider} " if provider else ""
        super().__init__(f"{where}HTTP {status_code}: {message}")

    @property
    def retryable(self) -> bool:
        return self.status_code == 429 or self.status_code >= 500


class ContextLengthError(ProviderHTTPError):
    """The server refused the request as longer than the model's context window (OpenAI
    ``context_length_exceeded``, Anthropic "prompt is too long", llama.cpp "exceeds the available
    context size", vLLM and OpenRouter "maximum context length"). Never retried as is: the loop
    sends a shorter request instead."""


class ProviderConnectionError(ProviderError):
    """Connection refused, reset or timed out (retryable)."""

    retryable = True


class ProviderStreamError(ProviderError):
    """The stream was malformed or ended early.

    ``partial`` is True when some of the answer had already arrived: the loop keeps
    that part instead of retrying.
    """

    def __init__(self, message: str, *, partial: bool = False) -> None:
        self.partial = partial
        super().__init__(message)


class ProviderTimeoutError(ProviderError):
    """The server sent nothing for the idle timeout (keep-alive comments count as silence), or one model
    call ran past its total time limit. Not retried: a stuck server would only be waited on again."""

    retryable = False


# -- the context budget and the cost limit -----------------------------------------


class ContextBudgetError(CodeTetherError, ValueError):
    """The request cannot be made to fit the model's context window (raised before any model call),
    or a window setting (``CodeTether.context_tokens``, ``CODETETHER_CONTEXT_TOKENS``,
    ``metadata.rlm``) is not valid."""


class CostLimitError(CodeTetherError):
    """The loop stopped before a model call that would pass the cost limit (``--budget`` or
    ``CODETETHER_COST_LIMIT_USD``); the message names the limit and what was spent."""


# -- tools and replay ---------------------------------------------------------


class ToolError(CodeTetherError):
    """A tool call failed; its message is sent back to the model as the result."""


class McpError(CodeTetherError):
    """An MCP server could not start, timed out or stopped; the message names the server."""


class McpConfigError(McpError, ValueError):
    """The ``mcpServers`` config is wrong; the message names the file, the server entry and the fix."""


class ReplayError(CodeTetherError):
    """Replay was asked for but the transcript has no recorded answer for this prompt."""
