"""A private JupyterLab server and a headless system Chromium for the browser tests.

The server is the one students run (`make lab`), with its state kept out of the way: token
authentication on, a free port on 127.0.0.1, and every Jupyter folder (config, runtime, data,
lab settings, lab workspaces) in a temporary directory, so neither the user's own JupyterLab
set-up nor a saved workspace changes what the test sees, and the test changes neither.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the `browser` fixture: skip on a laptop, fail in CI
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[1]

# Playwright's own browser download does not work everywhere (closed networks); Debian's
# `chromium` package does. Without the background-networking flags off, Chromium's own
# connections (updates, sync, QUIC probes) are refused on a closed network and slow it down.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# Lab settings for a test run, by plugin id, as a user would set them in Settings > Settings
# Editor; written to $JUPYTERLAB_SETTINGS_DIR/<package>/<plugin>.jupyterlab-settings.
LAB_SETTINGS = {
    # Never write the lecture back: the test runs it, it must not commit new outputs.
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    # Every cell in the DOM, so prompts and outputs can be read without scrolling.
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    # No "Would you like to get notified about official Jupyter news?" toast over the page.
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}

TIMINGS = pytest.StashKey[list]()


def require(condition: bool, reason: str) -> None:
    """A missing browser skips the test on a laptop but fails it in CI (where CI is set)."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    """$SSLTEACH_CHROMIUM, else `chromium` (Debian) or `chromium-browser` (Ubuntu) on PATH."""
    return (os.environ.get("SSLTEACH_CHROMIUM") or shutil.which("chromium")
            or shutil.which("chromium-browser"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab server: its URL, its token, and REST calls against it."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE")


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("jupyter")
    env = dict(os.environ)
    for name in ["JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR",
                 "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"]:
        env[name] = str(home / name.lower())
        os.makedirs(env[name])
    for plugin, values in LAB_SETTINGS.items():
        path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / f"{plugin.replace(':', '/')}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    port, token = free_port(), secrets.token_hex(24)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
        # window.jupyterapp: the notebook model, to tell error outputs from stderr text
        # (the DOM renders both as the same application/vnd.jupyter.stderr block).
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:  # containers and CI machines often run as root (as `make lab` does)
        command.append("--ServerApp.allow_root=True")
    log_path = home / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    running = Lab(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                running.api("/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; its log:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield running
    finally:
        server.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def browser():
    require(sync_playwright is not None,
            "playwright is not installed (pip install -e '.[test]')")
    executable = chromium_path()
    require(executable is not None,
            "no Chromium found: apt-get install chromium, or set SSLTEACH_CHROMIUM to its path")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def timings(request):
    """Where each test puts its timing line; printed in pytest's summary, even without -s."""
    return request.config.stash.setdefault(TIMINGS, [])


def pytest_terminal_summary(terminalreporter, config):
    lines = config.stash.get(TIMINGS, [])
    if lines:
        terminalreporter.section("lectures in the browser")
        for line in lines:
            terminalreporter.write_line(line)
