"""Images for ``-i REF``: what earlier cells displayed, or a variable holding an image.

``ImageCapture`` hooks the shell's display publisher (inline matplotlib, ``display(Image(...))``)
and its displayhook (a figure returned as a cell's last expression) and keeps the PNG and
JPEG images per cell. Cells are numbered by their execution count when the shell keeps
history, and by counting cells otherwise (nbval runs every cell as execution count 1).

``resolve`` turns references into ``ImageAttachment``s: ``last``, ``N``, ``Out[N]``, or a
name in the user namespace holding a matplotlib Figure (or Axes), a PIL image, PNG/JPEG
bytes, an ``IPython.display.Image`` or a file path. Only PNG and JPEG are sent; an image
over ``max_bytes`` is refused with its size; one image is never sent twice.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import re
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import CodeTetherError

if TYPE_CHECKING:  # pragma: no cover
    from ..messages import ImageAttachment

__all__ = ["ImageCapture", "ImageRefError", "sent_image_urls"]

log = logging.getLogger(__name__)

_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
_OUT_REF = re.compile(r"Out\[(\d+)\]")
_IMAGES_PER_CELL = 20  # a cell that shows figures in a loop keeps only its last ones
_USAGE = (
    "An image reference is 'last', a cell number N, 'Out[N]', or the name of a variable holding "
    "a matplotlib Figure, a PIL image, PNG/JPEG bytes or a file path."
)


class ImageRefError(CodeTetherError, ValueError):
    """An ``-i REF`` that names no usable image; the message says what to do instead."""


@dataclass(frozen=True)
class _Image:
    mime: str
    data_url: str | None  # None when the image is over the size cap (only its size is kept)
    size: int
    returned: bool  # True for a cell's result (Out[N]), False for display() output


@dataclass
class _Cell:
    number: int
    images: list[_Image] = field(default_factory=list)
    other_images: set[str] = field(default_factory=set)  # e.g. image/svg+xml, never sent


def sent_image_urls(session: Any) -> set[str]:
    """The data URLs of every image already in the transcript."""
    return {
        part.url
        for message in session.messages
        for part in message.content
        if getattr(part, "type", None) == "image"
    }


def _sniff(head: bytes) -> str | None:
    return next((mime for mime, magic in _MAGIC.items() if head.startswith(magic)), None)


def _human(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB ({size:,} bytes)"


def _image_from_bytes(raw: bytes, *, returned: bool = False) -> _Image | None:
    mime = _sniff(raw[:8])
    if mime is None:
        return None
    url = f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"
    return _Image(mime, url, len(raw), returned)


def _image_from_bundle_value(mime: str, value: Any, *, max_bytes: int, returned: bool) -> _Image | None:
    """A displayed ``image/png`` / ``image/jpeg`` value: bytes, or base64 text (ipykernel)."""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        if not raw.startswith(_MAGIC[mime][:2]):  # base64 sent as bytes by some libraries
            value = raw.decode("ascii", errors="replace")
        else:
            image = _image_from_bytes(raw, returned=returned)
            return _capped(image, max_bytes)
    if not isinstance(value, str):
        return None
    b64 = "".join(value.split())
    try:
        head = base64.b64decode(b64[:16] + "=" * (-len(b64[:16]) % 4), validate=False)
    except (ValueError, binascii.Error):  # not base64 at all
        return None
    if _sniff(head) != mime:
        return None
    size = len(b64) * 3 // 4 - b64[-2:].count("=")
    return _capped(_Image(mime, f"data:{mime};base64,{b64}", size, returned), max_bytes)


def _capped(image: _Image | None, max_bytes: int) -> _Image | None:
    if image is not None and image.size > max_bytes:
        return _Image(image.mime, None, image.size, image.returned)  # keep the size for the error
    return image


class ImageCapture:
    """Images displayed by the cells of one shell, and ``-i REF`` resolution."""

    def __init__(self, shell: Any, *, max_bytes: int = 5 * 1024 * 1024, keep_cells: int = 100) -> None:
        self.shell = shell
        self.max_bytes = max_bytes
        self._cells: deque[_Cell] = deque(maxlen=keep_cells)  # only cells that showed images
        self._current = _Cell(1)  # the cell running now; its number is fixed in post_run_cell
        self._registered = False
        self._wrapped: list[tuple[Any, str]] = []
        # Told of each cell and display through these same hooks (cell_log.CellLog; it never raises).
        self.listener: Any = None

    # -- hooks ----------------------------------------------------------------

    def register(self) -> None:
        """Start capturing; call from the shell's thread (display hooks are thread-local)."""
        if self._registered:
            return
        self._current = _Cell(1)  # the cell loading us; post_run_cell corrects its number
        self._hook(self.shell.display_pub, "publish", self._display_hook, returned=False)
        self._hook(self.shell.displayhook, "write_format_data", self._result_hook, returned=True)
        self.shell.events.register("pre_run_cell", self._pre_run_cell)
        self.shell.events.register("post_run_cell", self._post_run_cell)
        self._registered = True

    def unregister(self) -> None:
        if not self._registered:
            return
        self.shell.events.unregister("pre_run_cell", self._pre_run_cell)
        self.shell.events.unregister("post_run_cell", self._post_run_cell)
        for target, hook in ((self.shell.display_pub, self._display_hook),
                             (self.shell.displayhook, self._result_hook)):
            if hasattr(target, "unregister_hook"):
                target.unregister_hook(hook)
        for target, name in self._wrapped:
            target.__dict__.pop(name, None)  # drop our wrapper, the class method shows again
        self._wrapped.clear()
        self._registered = False

    def _hook(self, target: Any, method: str, hook: Any, *, returned: bool) -> None:
        """ipykernel has message hooks; a plain IPython shell gets a wrapper on the method."""
        if hasattr(target, "register_hook"):
            target.register_hook(hook)
            return
        original = getattr(target, method)

        def wrapper(data: Any, *args: Any, **kwargs: Any) -> Any:
            self._capture(data, returned=returned)
            return original(data, *args, **kwargs)

        setattr(target, method, wrapper)
        self._wrapped.append((target, method))

    def _display_hook(self, msg: dict) -> dict:
        self._capture((msg.get("content") or {}).get("data"), returned=False)
        return msg  # the hook chain needs the message back, or it is never sent

    def _result_hook(self, msg: dict) -> dict:
        self._capture((msg.get("content") or {}).get("data"), returned=True)
        return msg

    def _pre_run_cell(self, info: Any) -> None:
        # Provisional: the next number. Right for history cells (corrected after the run anyway)
        # and for nbval, where execution_count never moves and we count cells ourselves.
        self._current = _Cell(self._current.number + 1)
        if self.listener is not None:
            self.listener.cell_started(info)

    def _post_run_cell(self, result: Any) -> None:
        info = getattr(result, "info", None)
        count = getattr(result, "execution_count", None)
        if getattr(info, "store_history", False) and isinstance(count, int):
            self._current.number = count  # In[N] / Out[N] as the user sees them
        if self.listener is not None:
            self.listener.cell_finished(self._current.number, result)  # the number -i N uses

    def _capture(self, bundle: Any, *, returned: bool) -> None:
        if not isinstance(bundle, dict):
            return
        if self.listener is not None:
            self.listener.displayed(bundle, returned)
        try:
            self._store(bundle, returned=returned)
        except Exception:  # a capture problem must never break the user's display
            log.debug("could not capture a displayed image", exc_info=True)

    def _store(self, bundle: dict, *, returned: bool) -> None:
        images = [mime for mime in bundle if mime.startswith("image/")]
        if not images:
            return
        cell = self._current
        if not self._cells or self._cells[-1] is not cell:
            self._cells.append(cell)
        for mime in images:
            if mime not in _MAGIC:
                cell.other_images.add(mime)
                continue
            image = _image_from_bundle_value(mime, bundle[mime], max_bytes=self.max_bytes, returned=returned)
            if image is not None and not _same_image_in(cell, image):
                cell.images.append(image)
                del cell.images[:-_IMAGES_PER_CELL]
            break  # one bundle is one picture: keep its first PNG/JPEG form only

    def cells_with_images(self) -> list[int]:  # oldest first
        return [cell.number for cell in self._cells if cell.images]

    def images_of(self, number: int) -> list[_Image]:  # data_url None: over the cap
        return [image for cell in self._cells if cell.number == number for image in cell.images]

    # -- references -----------------------------------------------------------

    def resolve(self, refs: Iterable[str], *, already_sent: Iterable[str] = frozenset()) -> list["ImageAttachment"]:
        """The images ``refs`` name, minus any already sent or repeated; raises ``ImageRefError``."""
        from ..messages import ImageAttachment  # pydantic: not imported while %load_ext runs
        seen = set(already_sent)
        attachments = []
        for ref in refs:
            for image in self._resolve_one(str(ref).strip()):
                if image.data_url is None or image.size > self.max_bytes:
                    raise ImageRefError(
                        f"Image {ref!r} is {_human(image.size)}, over the limit of {_human(self.max_bytes)}. "
                        "Send a smaller image: lower the figure's dpi or size, or resize it with PIL."
                    )
                if image.data_url in seen:
                    continue
                seen.add(image.data_url)
                attachments.append(ImageAttachment(data_url=image.data_url, mime_type=image.mime))
        return attachments

    def _resolve_one(self, ref: str) -> list[_Image]:
        if not ref:
            raise ImageRefError(f"Empty image reference. {_USAGE}")
        if ref == "last":
            return [self._last()]
        if ref.isdigit():
            return self._cell_images(int(ref), returned_only=False)
        out = _OUT_REF.fullmatch(ref)
        if out:
            return self._cell_images(int(out.group(1)), returned_only=True)
        namespace = getattr(self.shell, "user_ns", {})
        if ref.isidentifier() and ref in namespace:
            return [self._from_value(namespace[ref], f"variable {ref!r}")]
        if os.path.isfile(ref):
            return [self._from_path(ref, f"file {ref!r}")]
        raise ImageRefError(f"Unknown image reference {ref!r}: no such variable or file. {_USAGE}")

    def _last(self) -> _Image:
        for cell in reversed(self._cells):
            if cell.images:
                return cell.images[-1]
        raise ImageRefError(
            "No PNG or JPEG image has been displayed since the extension was loaded, so '-i last' "
            "has nothing to send. Show a plot first (e.g. plt.show() with %matplotlib inline), "
            "or pass a variable holding a figure or image." + self._svg_hint(self._cells)
        )

    def _cell_images(self, number: int, *, returned_only: bool) -> list[_Image]:
        cells = [c for c in self._cells if c.number == number]
        images = [i for c in cells for i in c.images if i.returned or not returned_only]
        if images:
            return images
        if returned_only:
            value = (getattr(self.shell, "user_ns", {}).get("Out") or {}).get(number)
            if value is not None:
                return [self._from_value(value, f"Out[{number}]")]
        shown = sorted({c.number for c in self._cells if c.images})
        what = "returned no image" if returned_only else "displayed no PNG or JPEG image"
        listing = ", ".join(map(str, shown)) if shown else "none yet"
        raise ImageRefError(
            f"Cell {number} {what} (cells with images: {listing}). "
            "Use '-i last' for the most recent image." + self._svg_hint(cells)
        )

    @staticmethod
    def _svg_hint(cells: Iterable[_Cell]) -> str:
        if any("image/svg+xml" in c.other_images for c in cells):
            return " Only SVG was shown: run %config InlineBackend.figure_formats = ['png']."
        return ""

    # -- values ---------------------------------------------------------------

    def _from_value(self, value: Any, what: str) -> _Image:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self._from_bytes(bytes(value), what)
        if isinstance(value, (str, os.PathLike)):
            path = os.fspath(value)
            if not os.path.isfile(path):  # the text is not echoed: it could be anything, a key even
                raise ImageRefError(
                    f"{what} holds a {type(value).__name__} ({len(path)} characters) that is not a path to an "
                    f"existing file (relative paths start in {os.getcwd()}). {_USAGE}"
                )
            return self._from_path(path, what)
        figure = _matplotlib_figure(value)
        if figure is not None:
            return self._from_bytes(_render_figure(figure), what)
        if _is_pil_image(value):
            return self._from_bytes(_encode_pil(value), what)
        for method, mime in (("_repr_png_", "image/png"), ("_repr_jpeg_", "image/jpeg")):
            render = getattr(value, method, None)  # IPython.display.Image and other display objects
            data = render() if callable(render) else None
            data = data[0] if isinstance(data, tuple) else data  # (data, metadata)
            image = _image_from_bundle_value(mime, data, max_bytes=self.max_bytes, returned=False) if data else None
            if image is not None:
                return image
        raise ImageRefError(f"{what} holds a {type(value).__name__}, not an image. {_USAGE}")

    def _from_path(self, path: str, what: str) -> _Image:
        size = os.path.getsize(path)
        if size > self.max_bytes:
            return _Image(_sniff(_read_head(path)) or "image/png", None, size, False)
        with open(path, "rb") as file:
            return self._from_bytes(file.read(), what)

    def _from_bytes(self, raw: bytes, what: str) -> _Image:
        image = _image_from_bytes(raw)
        if image is None:
            raise ImageRefError(
                f"{what} is not a PNG or JPEG image ({_describe(raw)}). Only PNG and JPEG are sent; "
                "convert it first, e.g. PIL.Image.open(path).save('image.png')."
            )
        return _capped(image, self.max_bytes)  # type: ignore[return-value]


_OTHER_FORMATS = {b"GIF8": "GIF", b"RIFF": "WebP or another RIFF file", b"BM": "BMP", b"II*\x00": "TIFF",
                  b"MM\x00*": "TIFF", b"%PDF": "PDF", b"<svg": "SVG", b"<?xml": "XML or SVG"}


def _describe(raw: bytes) -> str:
    """What the data looks like, without echoing it (it may be any bytes, a secret even)."""
    for magic, name in _OTHER_FORMATS.items():
        if raw.startswith(magic):
            return f"it looks like {name}"
    return f"{len(raw):,} bytes of another kind" if raw else "it is empty"


def _same_image_in(cell: _Cell, image: _Image) -> bool:
    """The same figure often arrives twice (inline flush and the returned value)."""
    for kept in cell.images:
        if kept.data_url == image.data_url and kept.size == image.size:
            if image.returned and not kept.returned:  # remember it was also the cell's result
                cell.images[cell.images.index(kept)] = _Image(kept.mime, kept.data_url, kept.size, True)
            return True
    return False


def _read_head(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read(8)


def _matplotlib_figure(value: Any) -> Any:
    """A matplotlib Figure for a Figure, Axes or anything with ``.figure`` (seaborn grids)."""
    module = sys.modules.get("matplotlib.figure")  # never import matplotlib for this check
    if module is None:
        return None
    if isinstance(value, module.Figure):
        return value
    figure = getattr(value, "figure", None) if type(value).__module__.split(".")[0] in (
        "matplotlib", "seaborn", "pandas") else None
    return figure if isinstance(figure, module.Figure) else None


def _render_figure(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _is_pil_image(value: Any) -> bool:
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(value, module.Image)


def _encode_pil(image: Any) -> bytes:
    buffer = io.BytesIO()
    if image.format == "JPEG" and image.mode in ("RGB", "L"):
        image.save(buffer, format="JPEG", quality=90)  # keep a photo small
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()
