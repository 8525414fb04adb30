"""Drive JupyterLab in Debian's headless Chromium with the ``playwright`` package.

The system ``/usr/bin/chromium`` (never a downloaded browser: the test runs offline and uses
what the distribution ships), a loopback-only ``jupyter lab`` on a free port with a random
token, and a notebook written afresh for every run (JupyterLab autosaves after 120 s).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import nbformat

from .kernel import make_notebook

CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    """A port the OS just handed out for 127.0.0.1 (the port-0 trick for a child process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lab_environment(openai_base_url: str, key: str, data_dir: Path) -> dict[str, str]:
    """The environment for ``jupyter lab`` (and so its kernels): the loopback model server and a data dir."""
    env = dict(os.environ)  # the conftest fixture already removed real provider settings
    env.update(OPENAI_BASE_URL=openai_base_url, OPENAI_API_KEY=key, CODETETHER_DATA_DIR=str(data_dir))
    return env


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A fresh notebook of code cells (source strings) with the venv's python3 kernel."""
    nbformat.write(make_notebook(*cells), path)
    return path


class JupyterLab:
    """A running ``jupyter lab`` serving ``root_dir`` on 127.0.0.1."""

    def __init__(self, root_dir: Path, *, env: dict[str, str], log_path: Path) -> None:
        self.root_dir = root_dir
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self._env = env
        self._log_path = log_path
        self._state_dir = log_path.parent / "jupyterlab-state"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        return f"{self.base_url}/lab/tree/{name}?token={self.token}"

    def start(self, *, timeout: float = 60.0) -> None:
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
            f"--port={self.port}", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}", "--allow-root",
            "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            # Fresh workspace and settings: no tabs or preferences left over from the user's own Lab.
            f"--LabApp.workspaces_dir={self._state_dir / 'workspaces'}",
            f"--LabApp.user_settings_dir={self._state_dir / 'user-settings'}",
        ]
        log = open(self._log_path, "wb")  # noqa: SIM115 - closed with the process
        self._process = subprocess.Popen(
            command, cwd=self.root_dir, env=self._env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() also ends the kernels
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.base_url}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early; see {self._log_path}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)  # polling a child process's port: there is no event to await
        raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f} s; see {self._log_path}")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=5)


@contextmanager
def jupyter_lab(root_dir: Path, *, env: dict[str, str], log_path: Path) -> Iterator[JupyterLab]:
    server = JupyterLab(root_dir, env=env, log_path=log_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextmanager
def chromium_page(*, width: int = 1280, height: int = 900) -> Iterator[object]:
    """A playwright ``Page`` in headless Debian Chromium; closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def open_notebook(page, server: JupyterLab, name: str, *, timeout_ms: int = 60_000) -> None:
    """Open ``name`` and wait until its kernel is connected and idle."""
    page.goto(server.notebook_url(name), timeout=timeout_ms)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout_ms)
    wait_kernel_idle(page, timeout_ms=timeout_ms)
    _dismiss_news_prompt(page)


def wait_kernel_idle(page, *, timeout_ms: int = 60_000) -> None:
    """The status bar says "<kernel> | Idle": connected, started and not busy."""
    page.wait_for_function(
        "() => /\\|\\s*Idle/.test(document.querySelector('.jp-StatusBar-Widget')?.innerText ?? '')",
        timeout=timeout_ms,
    )


def _dismiss_news_prompt(page) -> None:
    """JupyterLab's "notified about official Jupyter news?" toast would cover outputs in screenshots."""
    toast = page.locator(".jp-toast-button", has_text="No")
    try:
        toast.first.click(timeout=3_000)
    except Exception:  # noqa: BLE001 - no toast (it is optional), nothing to dismiss
        pass


def _cell(page, index: int):
    return page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(index)


def run_cell(page, index: int, *, timeout_ms: int = 30_000) -> None:
    """Select code cell ``index`` and run it with Shift+Enter; returns once the kernel took it."""
    cell = _cell(page, index)
    cell.locator(".jp-InputPrompt").click()  # select the cell (command mode) without editing it
    page.keyboard.press("Shift+Enter")
    # "[*]:" while it runs, "[N]:" when done: either way the kernel has the cell.
    cell.locator(".jp-InputPrompt").filter(has_text=re.compile(r"\[(\*|\d+)\]")).wait_for(timeout=timeout_ms)


def wait_cell_done(page, index: int, *, timeout_ms: int = 60_000) -> None:
    _cell(page, index).locator(".jp-InputPrompt").filter(has_text=re.compile(r"\[\d+\]")).wait_for(
        timeout=timeout_ms
    )


def cell_output(page, index: int):
    """The output area locator of cell ``index``."""
    return _cell(page, index).locator(".jp-OutputArea")


def run_all(page) -> None:
    """Run > Run All Cells, through the menu bar as a user would."""
    page.keyboard.press("Escape")  # command mode, so the menu is not fighting an editor
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


# -- what the record tests need ------------------------------------------------------------

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "out" / "screenshots"


def keep_screenshot(page, path: Path, *also: str) -> Path:
    """Take a screenshot into the test's tmp dir and keep a copy in out/screenshots/ (gitignored),
    there also under each name in ``also`` (one capture, not one per name)."""
    import shutil

    page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in (path.name, *also):
        shutil.copy(path, SCREENSHOTS / name)
    return path


class RequestCounter:
    """A loopback HTTP listener that counts every request it gets (it should get none)."""

    def __init__(self) -> None:
        import http.server
        import threading

        counter = self
        self.paths: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                counter.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "RequestCounter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def save_notebook(page) -> None:
    """Ctrl+S in command mode, then wait until the tab is no longer marked dirty."""
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-current.jp-mod-dirty')", timeout=15_000)


def shut_down_kernels(server: JupyterLab) -> None:
    """Every kernel of the server, shut down through its REST API (as Kernel > Shut Down does)."""
    import json

    def call(method: str, path: str) -> bytes:
        request = urllib.request.Request(f"{server.base_url}{path}?token={server.token}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    for kernel in json.loads(call("GET", "/api/kernels")):
        call("DELETE", f"/api/kernels/{kernel['id']}")


def running_kernels(server: JupyterLab) -> list[dict]:
    """The server's kernels, from its REST API."""
    import json

    url = f"{server.base_url}/api/kernels?token={server.token}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def shut_down_kernel_from_menu(page) -> None:
    """Kernel > Shut Down Kernel, as a user would; waits until the status bar says "No Kernel".

    Waits for the kernel to be idle first: clicked while the kernel is still starting, the menu
    item does nothing and the kernel comes up afterwards.
    """
    wait_kernel_idle(page)
    page.keyboard.press("Escape")
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Shut Down Kernel")).first.click()
    page.wait_for_function(
        "() => /No Kernel/.test(document.querySelector('.jp-StatusBar-Widget')?.innerText ?? '')",
        timeout=30_000,
    )


def set_theme(page, name: str) -> None:
    """Settings > Theme > ``name``, through the menus; waits until the theme is applied."""
    page.keyboard.press("Escape")
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=name).first.click()
    light = "false" if "Dark" in name else "true"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=15_000)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=15_000)  # shown while it switches
