"""The package root is the one public door: its names, and that importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import codetether_magics

PUBLIC_NAMES = {  # the names importable from the package root: the public API
    "Session", "Message", "SessionEvent", "SessionResult", "TailLoad",
    "ImageAttachment", "ProviderRegistry", "Config",
}


def test_all_is_sorted_and_complete():
    assert codetether_magics.__all__ == sorted(codetether_magics.__all__)
    assert PUBLIC_NAMES <= set(codetether_magics.__all__)


def test_every_exported_name_resolves():
    for name in codetether_magics.__all__:
        assert getattr(codetether_magics, name) is not None, name


def test_unknown_attribute_is_an_attribute_error():
    try:
        codetether_magics.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_defers_heavy_modules():
    code = (
        "import sys, codetether_magics;"
        "heavy = [m for m in ('pydantic', 'httpx', 'hvac', 'ipywidgets', 'orjson') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at package import: {out.stdout.strip()}"
