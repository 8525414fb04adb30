"""An MCP ``CallToolResult`` as a ``ToolResult``: text for the transcript, images for the model.

Text blocks are joined; an image block becomes an ``ImageAttachment`` (a data: URL) in
``ToolResult.images`` with a one-line placeholder in the text; embedded text resources are
inlined; audio and binary resources are named, not sent. Read by duck typing on each
block's ``type``, so this module does not import the SDK.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ...messages import ImageAttachment
from ..tools.base import ToolResult

__all__ = ["MAX_IMAGE_BYTES", "MODEL_IMAGE_TYPES", "to_tool_result"]

MODEL_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})  # what both APIs take
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Anthropic's limit per image


def to_tool_result(result: Any) -> ToolResult:
    texts: list[str] = []
    images: list[ImageAttachment] = []
    for block in getattr(result, "content", None) or []:
        texts.append(_block_text(block, images))
    structured = getattr(result, "structured_content", None)
    if not texts and structured is not None:
        texts.append(json.dumps(structured, ensure_ascii=False, default=str))
    output = "\n".join(text for text in texts if text) or "(the tool returned nothing)"
    return ToolResult(output=output, success=not getattr(result, "is_error", False), images=images)


def _block_text(block: Any, images: list[ImageAttachment]) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return block.text
    if kind == "image":
        return _image(block.data, block.mime_type, images)
    if kind == "audio":
        return f"[audio ({block.mime_type}) not shown: the model takes text and images]"
    if kind == "resource_link":
        return f"[resource {getattr(block, 'name', '')}: {block.uri}]"
    if kind == "resource":
        return _embedded(block.resource, images)
    return f"[{kind or 'unknown'} content not shown]"


def _embedded(resource: Any, images: list[ImageAttachment]) -> str:
    text = getattr(resource, "text", None)
    if isinstance(text, str):
        return text
    mime = getattr(resource, "mime_type", None) or "application/octet-stream"
    if mime in MODEL_IMAGE_TYPES:
        return _image(resource.blob, mime, images)
    return f"[binary resource {resource.uri} ({mime}) not shown]"


def _image(data: str, mime: str, images: list[ImageAttachment]) -> str:
    mime = (mime or "").lower()
    if mime not in MODEL_IMAGE_TYPES:
        return f"[{mime or 'untyped'} image not sent: the model takes PNG, JPEG, GIF or WebP]"
    try:
        size = len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return f"[{mime} image not sent: its data is not valid base64]"
    if size > MAX_IMAGE_BYTES:
        return f"[{mime} image of {size} bytes not sent: over the {MAX_IMAGE_BYTES} byte limit]"
    images.append(ImageAttachment(data_url=f"data:{mime};base64,{data}", mime_type=mime))
    return f"[image {len(images)}: {mime}, {size} bytes, attached for the model]"
