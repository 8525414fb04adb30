"""``apply_config`` and ``resolve_subcall_provider``: the RLM settings of a session and the
provider its subcalls use, as functions behind the ``Session`` methods of the same names.

The registry is anything with ``resolve_model(selector) -> (provider, model)`` (a
``ProviderRegistry``): this package does not import the providers. The resolved subcall
provider is runtime state (a provider object holds credentials), so it is kept in private
attributes of the session and never written to the session file.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from .metadata import Config

__all__ = ["ModelResolver", "apply_config", "resolve_subcall_provider", "subcall_provider"]

log = logging.getLogger(__name__)


class ModelResolver(Protocol):
    """What resolving a subcall model needs of a registry."""

    def resolve_model(self, selector: str) -> tuple[Any, str]: ...


def _set(session: Any, provider: Any, model_name: str | None) -> None:
    # Private attributes declared on Session: runtime state, never serialised.
    session._subcall_provider = provider
    session._subcall_model_name = model_name


def subcall_provider(session: Any) -> tuple[Any, str] | None:
    """The (provider, provider-local model) resolved for ``metadata.rlm.subcall_model``, if any."""
    provider, model_name = session._subcall_provider, session._subcall_model_name
    return (provider, model_name) if provider is not None and model_name else None


def apply_config(session: Any, config: Config, registry: ModelResolver | None = None) -> None:
    """Copy ``config.rlm`` into ``session.metadata.rlm`` and re-resolve the subcall model (idempotent).

    A failed resolution is logged, never raised: subcalls then use the root model.
    """
    if not isinstance(config, Config):
        raise TypeError(f"apply_config needs a codetether_magics.Config, not {type(config).__name__}")
    session.metadata.rlm = config.rlm.model_copy(deep=True)
    _set(session, None, None)
    if registry is not None:
        resolve_subcall_provider(session, registry)


def resolve_subcall_provider(session: Any, registry: ModelResolver) -> tuple[Any, str] | None:
    """Resolve ``metadata.rlm.subcall_model`` against ``registry`` once; log (not raise) a failure."""
    already = subcall_provider(session)
    if already is not None:
        return already
    selector = session.metadata.rlm.subcall_model
    if not selector:
        return None
    try:
        provider, model_name = registry.resolve_model(selector)
    except Exception as exc:  # noqa: BLE001 - a subcall can always fall back to the root model
        log.warning("RLM subcall_model %r could not be resolved (%s); subcalls will use the root model",
                    selector, exc)
        return None
    _set(session, provider, model_name)
    log.debug("RLM subcall model resolved: %s", model_name)
    return provider, model_name
