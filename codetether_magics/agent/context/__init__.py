"""The context budget: every request fits the model's context window.

- ``tokens``: estimates without a tokenizer download.
- ``windows``: each model's window, and the user's override.
- ``derive``: which transcript messages a request carries (placeholders, safe cuts).
- ``summary``: the one model call that compacts earlier turns.
- ``store``: the summary kept in the session file, and counts of what the budget did.
- ``budget``: ``RequestBudget``, the loop's one door to all of this.
"""

from __future__ import annotations

from .budget import BUDGET_SHARE, RETRY_KEEP, Derived, RequestBudget
from .store import budget_counts
from .tokens import IMAGE_TOKENS, estimate_message, estimate_messages, estimate_request, estimate_text
from .windows import DEFAULT_WINDOW, MODEL_WINDOWS, context_window, table_window

__all__ = ["BUDGET_SHARE", "DEFAULT_WINDOW", "IMAGE_TOKENS", "MODEL_WINDOWS", "RETRY_KEEP", "Derived",
           "RequestBudget", "budget_counts", "context_window", "estimate_message", "estimate_messages",
           "estimate_request", "estimate_text", "table_window"]
