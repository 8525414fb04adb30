"""What a ``%%codetether`` cell shows: the live widget while it runs, the static record after.

``state``: the run's blocks, built from events (the one source of both). ``live``: the
widget. ``record``: the ``text/markdown`` + ``text/plain`` bundle that stays. ``safe``: model
Markdown made safe for any renderer. ``markdown`` / ``html``: the live view's HTML.
"""

from .live import WIDGET_MIME, LiveView
from .record import record_bundle, text_bundle
from .state import ViewState

__all__ = ["WIDGET_MIME", "LiveView", "ViewState", "record_bundle", "text_bundle"]
