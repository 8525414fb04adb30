"""-i NAME: variables holding figures, PIL images, bytes, paths; size cap; sent_image_urls."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace

import pytest
from matplotlib.figure import Figure
from PIL import Image

from codetether_magics.errors import CodeTetherError
from codetether_magics.messages import ImagePart, Message, TextPart
from codetether_magics.notebook.images import ImageCapture, ImageRefError, sent_image_urls


class FakeEvents:
    def register(self, *_):
        pass


def capture_with(**namespace) -> ImageCapture:
    """A capture over a namespace only: variable refs need no display hooks."""
    shell = SimpleNamespace(user_ns=dict(namespace), events=FakeEvents(), execution_count=1)
    return ImageCapture(shell)


def raw(url: str) -> tuple[str, bytes]:
    head, data = url.split(",", 1)
    return head, base64.b64decode(data, validate=True)


def pil_bytes(fmt: str, size=(16, 16), color=(0, 128, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def test_matplotlib_figure_and_axes():
    fig = Figure(figsize=(2, 2))  # no pyplot: the test leaves the global backend alone
    ax = fig.add_subplot()
    ax.plot([1, 2, 3])
    capture = capture_with(fig=fig, ax=ax)
    [image] = capture.resolve(["fig"])
    head, data = raw(image.data_url)
    assert head == "data:image/png;base64" and image.mime_type == "image/png"
    assert Image.open(io.BytesIO(data)).format == "PNG"
    assert capture.resolve(["ax"], already_sent={image.data_url}) == []  # the same figure


def test_pil_images_png_and_jpeg():
    png = Image.new("RGBA", (10, 6), (1, 2, 3, 4))
    jpeg = Image.open(io.BytesIO(pil_bytes("JPEG")))
    capture = capture_with(png=png, jpeg=jpeg)
    first, second = capture.resolve(["png", "jpeg"])
    assert first.mime_type == "image/png" and Image.open(io.BytesIO(raw(first.data_url)[1])).size == (10, 6)
    assert second.mime_type == "image/jpeg" and raw(second.data_url)[0] == "data:image/jpeg;base64"


def test_bytes_paths_and_ipython_image(tmp_path):
    from IPython.display import Image as IPyImage

    data = pil_bytes("PNG")
    path = tmp_path / "plot.jpg"
    path.write_bytes(pil_bytes("JPEG", color=(9, 9, 9)))
    capture = capture_with(data=data, buf=bytearray(data), path=str(path), p=path,
                           ipy=IPyImage(data=pil_bytes("PNG", color=(1, 1, 1))))
    images = capture.resolve(["data", "buf", "path", "p", "ipy"])
    assert [i.mime_type for i in images] == ["image/png", "image/jpeg", "image/png"]  # duplicates dropped
    assert raw(images[0].data_url)[1] == data
    assert raw(images[1].data_url)[1] == path.read_bytes()
    # A path given directly as the reference works too.
    assert capture.resolve([str(path)]) == [images[1]]


def test_only_png_and_jpeg(tmp_path):
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (4, 4)).save(gif)
    capture = capture_with(gif=str(gif), text=b"hello", number=42, missing="no/such/file.png")
    with pytest.raises(ImageRefError, match=r"variable 'gif' is not a PNG or JPEG image \(it looks like GIF\)"):
        capture.resolve(["gif"])
    with pytest.raises(ImageRefError, match="variable 'text' is not a PNG or JPEG image"):
        capture.resolve(["text"])
    with pytest.raises(ImageRefError, match="variable 'number' holds a int, not an image.*PIL image"):
        capture.resolve(["number"])
    with pytest.raises(ImageRefError, match=r"variable 'missing' holds a str \(16 characters\) that is not a path"):
        capture.resolve(["missing"])
    with pytest.raises(ImageRefError, match="Empty image reference"):
        capture.resolve(["  "])


def test_size_cap_names_the_ref_the_size_and_the_cap(tmp_path):
    big = pil_bytes("PNG", size=(300, 300))
    noise = Image.frombytes("RGB", (400, 400), bytes(range(256)) * (400 * 400 * 3 // 256))
    path = tmp_path / "big.png"
    noise.save(path)
    shell = SimpleNamespace(user_ns={"big": big, "p": str(path)}, events=FakeEvents())
    capture = ImageCapture(shell, max_bytes=len(big) - 1)
    with pytest.raises(ImageRefError) as caught:
        capture.resolve(["big"])
    message = str(caught.value)
    assert "'big'" in message and f"{len(big):,} bytes" in message and f"{len(big) - 1:,} bytes" in message
    assert "lower the figure's dpi" in message
    with pytest.raises(ImageRefError, match=rf"Image 'p' is .*{path.stat().st_size:,} bytes"):
        capture.resolve(["p"])


def test_error_is_a_value_error_and_a_codetether_error():
    assert issubclass(ImageRefError, ValueError) and issubclass(ImageRefError, CodeTetherError)


def test_sent_image_urls_reads_the_transcript():
    url = "data:image/png;base64," + base64.b64encode(pil_bytes("PNG")).decode()
    session = SimpleNamespace(messages=[
        Message(role="user", content=[TextPart(text="look"), ImagePart(url=url, mime_type="image/png")]),
        Message.assistant("I see a square."),
    ])
    assert sent_image_urls(session) == {url}
    capture = capture_with(img=pil_bytes("PNG"))
    assert capture.resolve(["img"], already_sent=sent_image_urls(session)) == []


def test_objects_with_a_broken_png_repr_get_a_clear_error():
    class NotAnImage:
        def _repr_png_(self):
            return "ünïcode, not base64"

    with pytest.raises(ImageRefError, match="variable 'odd' holds a NotAnImage, not an image"):
        capture_with(odd=NotAnImage()).resolve(["odd"])


def test_errors_never_echo_what_a_variable_holds():
    secret = "sk-proj-" + "A1b2C3d4" * 6
    capture = capture_with(key=secret, raw=secret.encode())
    for ref in ("key", "raw"):
        with pytest.raises(ImageRefError) as caught:
            capture.resolve([ref])
        assert "sk-proj" not in str(caught.value) and "A1b2" not in str(caught.value)
