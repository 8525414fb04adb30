"""The cost limit of one turn: what the turn's model calls cost so far, and the check before each call.

The limit is the smaller of the cell's ``--budget USD`` (``budget_usd`` in the Python API) and
``CODETETHER_COST_LIMIT_USD``. Before each model call the call's prompt is priced from the
request's size (``pricing.estimate_call_cost``); when what was spent plus that estimate would
pass the limit, the loop stops with ``CostLimitError`` naming the limit, before any request is
sent. A model without a known price cannot be checked against a limit, so that stops too.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import CostLimitError
from ..providers.pricing import COST_LIMIT_VARIABLE, cost_limit_from_environ, cost_of, estimate_call_cost

__all__ = ["CostGuard"]


class CostGuard:
    def __init__(self, provider: str, budget_usd: float | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        if budget_usd is not None and not (isinstance(budget_usd, (int, float)) and 0 <= budget_usd < float("inf")):
            raise ValueError(f"budget_usd must be an amount of US dollars >= 0, got {budget_usd!r}")
        from_env = cost_limit_from_environ(environ)
        limits = [(v, name) for v, name in ((budget_usd, f"--budget {budget_usd}"),
                                            (from_env, f"{COST_LIMIT_VARIABLE}={from_env}")) if v is not None]
        self.limit, self.limit_name = min(limits) if limits else (None, "")
        self.provider = provider
        self.spent = 0.0

    def add(self, model: str, usage: Any) -> float | None:
        """Count one call's ``usage``; its cost in dollars (None when the price is unknown)."""
        cost = cost_of(self.provider, model, usage)
        self.spent += cost or 0.0
        return cost

    def check(self, request: Any) -> None:
        """Raise ``CostLimitError`` when ``request`` would take the turn past its limit."""
        if self.limit is None:
            return
        label = f"{self.provider}/{request.model}"
        estimate = estimate_call_cost(self.provider, request)
        if estimate is None:
            raise CostLimitError(f"Stopped before calling {label}: its price is not in the price table, so the "
                                 f"cost limit ({self.limit_name}) cannot be kept. Choose a priced model with -m, "
                                 f"or remove the limit.")
        if self.spent + estimate > self.limit:
            raise CostLimitError(
                f"Stopped before calling {label}: the call would cost about ${estimate:.4f} on top of "
                f"${self.spent:.4f} spent in this turn, past the cost limit of ${self.limit:.4f} "
                f"({self.limit_name}). Raise the limit to go on.")
