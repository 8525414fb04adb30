"""ImageCapture in a real InteractiveShell with %matplotlib inline: what cells displayed."""

from __future__ import annotations

import base64

import pytest
from IPython.core.interactiveshell import InteractiveShell

from codetether_magics.notebook.images import ImageCapture, ImageRefError


def run(shell, code: str, *, store_history: bool = True):
    result = shell.run_cell(code, store_history=store_history)
    assert result.success, result.error_in_exec or result.error_before_exec
    return result


@pytest.fixture
def shell(monkeypatch):
    shell = InteractiveShell.instance()  # the process's one shell, shared with the other shell tests
    # Should that be a terminal shell, it computes only text/plain; a kernel computes images too.
    monkeypatch.setattr(shell.display_formatter, "active_types",
                        ["text/plain", "text/html", "image/png", "image/jpeg", "image/svg+xml"])
    monkeypatch.setattr(shell, "enable_gui", lambda gui=None: None, raising=False)  # no GUI loop for inline
    run(shell, "%matplotlib inline")
    run(shell, "import matplotlib.pyplot as plt\nplt.close('all')")
    yield shell
    run(shell, "plt.close('all')")


@pytest.fixture
def capture(shell):
    capture = ImageCapture(shell)
    shell.user_ns["capture"] = capture
    run(shell, "capture.register()")
    yield capture
    capture.unregister()


def png_bytes(url: str) -> bytes:
    head, data = url.split(",", 1)
    assert head == "data:image/png;base64"
    return base64.b64decode(data, validate=True)


def test_inline_plot_is_last_and_its_cell_number(shell, capture):
    first = run(shell, "plt.plot([1, 4, 9])\nplt.show()")
    [image] = capture.resolve(["last"])
    assert image.mime_type == "image/png"
    assert png_bytes(image.data_url).startswith(b"\x89PNG\r\n\x1a\n")
    assert capture.resolve([str(first.execution_count)]) == [image]


def test_returned_figure_is_out_n_and_is_captured_once(shell, capture):
    result = run(shell, "fig, ax = plt.subplots()\nax.plot([3, 1, 2])\nfig")
    # The inline backend shows the figure again at the end of the cell: still one image.
    assert len(capture.resolve([str(result.execution_count)])) == 1
    [returned] = capture.resolve([f"Out[{result.execution_count}]"])
    assert capture.resolve(["last"]) == [returned]


def test_display_of_an_ipython_image_is_captured(shell, capture, tmp_path):
    from PIL import Image

    path = tmp_path / "red.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path)
    run(shell, f"from IPython.display import Image as I, display\ndisplay(I(filename={str(path)!r}))")
    [image] = capture.resolve(["last"])
    assert png_bytes(image.data_url) == path.read_bytes()


def test_several_refs_are_deduplicated_and_already_sent_is_skipped(shell, capture):
    one = run(shell, "plt.plot([1, 2])\nplt.show()").execution_count
    two = run(shell, "plt.plot([2, 1])\nplt.show()").execution_count
    images = capture.resolve(["last", str(two), str(one), "last"])
    assert len(images) == 2  # last == cell two; each picture once
    assert capture.resolve([str(one)], already_sent={images[1].data_url}) == []
    assert capture.resolve(["last"], already_sent={images[1].data_url}) == [images[0]]


def test_cells_without_history_are_counted_by_the_capture(shell, capture):
    # nbval runs every cell with store_history=False: execution_count never moves.
    before = shell.execution_count
    run(shell, "plt.plot([1, 2, 3])\nplt.show()", store_history=False)
    run(shell, "x = 1", store_history=False)
    run(shell, "plt.plot([3, 2, 1])\nplt.show()", store_history=False)
    assert shell.execution_count == before
    numbers = [cell.number for cell in capture._cells]
    assert numbers[-1] - numbers[-2] == 2  # two cells apart, as in the notebook
    assert capture.resolve(["last"]) == capture.resolve([str(numbers[-1])])
    assert capture.resolve([str(numbers[-2])]) != capture.resolve(["last"])


def test_clear_errors_for_missing_images(shell, capture):
    with pytest.raises(ImageRefError, match="No PNG or JPEG image has been displayed"):
        capture.resolve(["last"])
    text_cell = run(shell, "print('no plot here')").execution_count
    with pytest.raises(ImageRefError, match=rf"Cell {text_cell} displayed no PNG or JPEG image"):
        capture.resolve([str(text_cell)])
    with pytest.raises(ImageRefError, match=rf"Cell {text_cell} returned no image"):
        capture.resolve([f"Out[{text_cell}]"])
    with pytest.raises(ImageRefError, match="Unknown image reference 'nope'.*matplotlib Figure"):
        capture.resolve(["nope"])


def test_svg_only_output_gets_a_hint(shell, capture):
    run(shell, "%config InlineBackend.figure_formats = ['svg']")
    try:
        run(shell, "plt.plot([1, 2])\nplt.show()")
        with pytest.raises(ImageRefError, match=r"Only SVG was shown.*figure_formats = \['png'\]"):
            capture.resolve(["last"])
    finally:
        run(shell, "%config InlineBackend.figure_formats = ['png']")


def test_images_over_the_cap_are_refused_with_their_size(shell):
    small = ImageCapture(shell, max_bytes=1000)
    shell.user_ns["small"] = small
    run(shell, "small.register()")
    try:
        run(shell, "plt.plot(range(100))\nplt.show()")
        with pytest.raises(ImageRefError, match=r"Image 'last' is .* bytes\), over the limit of .*1,000 bytes"):
            small.resolve(["last"])
    finally:
        small.unregister()


def test_unregister_removes_every_hook(shell):
    capture = ImageCapture(shell)
    publish = shell.display_pub.publish
    capture.register()
    capture.register()  # twice is harmless (%reload_ext)
    capture.unregister()
    assert shell.display_pub.publish == publish
    assert "publish" not in vars(shell.display_pub)
    assert "write_format_data" not in vars(shell.displayhook)
    assert capture._pre_run_cell not in shell.events.callbacks["pre_run_cell"]
    assert capture._post_run_cell not in shell.events.callbacks["post_run_cell"]
    run(shell, "plt.plot([1])\nplt.show()")
    with pytest.raises(ImageRefError):
        capture.resolve(["last"])


def test_a_cell_showing_figures_in_a_loop_keeps_its_last_twenty(shell, capture):
    cell = run(shell, "for i in range(25):\n    plt.figure(figsize=(1, 1)); plt.plot([0, i]); plt.show()")
    images = capture.resolve([str(cell.execution_count)])
    assert len(images) == 20
    assert images[-1] == capture.resolve(["last"])[0]
