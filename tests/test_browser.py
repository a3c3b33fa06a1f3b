"""Notebook 05's browser camera in a real browser: JupyterLab on localhost, headless Chromium with
a fake camera that plays a generated video of faces, driven by Playwright.

Needs Debian's chromium (``.ci/install-browser``) and ``pip install playwright`` (the dev extra;
Playwright's own browser download is not used). Skipped with the reason when either is missing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from emolib import CLASS_NAMES

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("EMOLIB_CHROMIUM", "/usr/bin/chromium"))
NOTEBOOK = ROOT / "notebooks" / "05_webcam_demo.ipynb"
pytestmark = pytest.mark.browser


def _requirements() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: run .ci/install-browser (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install playwright (in the dev extra)"
    return None


def write_y4m(path: Path, frames, fps: int = 30) -> Path:
    """A Y4M (YUV4MPEG2, I420) video: the format Chromium's fake camera reads."""
    import cv2

    frames = list(frames)
    height, width = frames[0].shape[:2]
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420\n".encode())
        for frame in frames:
            handle.write(b"FRAME\n")
            handle.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _test_notebook(folder: Path, model_path: Path) -> Path:
    """Notebook 05 with parameters injected the papermill way (a small, fast recording)."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    notebook = load_notebook_node(str(NOTEBOOK))
    notebook = parameterize_notebook(notebook, {
        "profile": "quick", "source": "sample", "model_path": str(model_path), "max_frames": 5,
        "live_camera": "browser"})
    target = folder / "webcam_demo_test.ipynb"
    nbformat.write(notebook, target)
    return target


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a random localhost port with a token, a fresh workspace and a test notebook."""
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    from emolib import models, sources

    folder = tmp_path_factory.mktemp("lab")
    model_path = folder / "tiny.keras"
    models.build_emonet(widths=(8, 16, 16, 16), dense_units=8).save(model_path)
    notebook = _test_notebook(folder, model_path)
    camera_video = write_y4m(folder / "faces.y4m", sources.sample_frames(120, faces=1))
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ, "EMOLIB_OUTPUTS": str(folder / "outputs"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "JUPYTER_CONFIG_DIR": str(folder / "jupyter-config")}
    log = open(folder / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--allow-root", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={folder}", f"--LabApp.workspaces_dir={folder / 'workspaces'}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}",
                                            timeout=2) as response:
                    json.load(response)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n" + (folder / "jupyterlab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}",
               "api": f"http://127.0.0.1:{port}/api", "token": token,
               "camera_video": camera_video, "folder": folder}
    finally:
        server.send_signal(signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _wait_for_idle_kernel(lab, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{lab['api']}/kernels?token={lab['token']}",
                                        timeout=5) as answer:
                kernels = json.load(answer)
        except OSError:  # the server answers 500 while a kernel is half started
            kernels = []
        if kernels and all(kernel["execution_state"] == "idle" for kernel in kernels):
            return
        time.sleep(0.5)
    pytest.fail(f"no idle kernel after {timeout:.0f} s")


def _launch(playwright, folder: Path, camera_video: Path):
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={camera_video}"])


def test_browser_camera_shows_annotated_frames_and_an_emotion(lab):
    """Run notebook 05; Start with no camera, then with permission denied (both say so and
    leave Start usable); then with the fake camera: annotated frames and an emotion appear."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = _launch(playwright, lab["folder"], lab["camera_video"])
        try:
            # no camera permission yet: the first Start must be refused, and say so
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(lab["url"])
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            _wait_for_idle_kernel(lab)  # "Run All" before the kernel is up can drop cells
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            status = page.locator(".emolib-status")
            status.wait_for(timeout=90_000)
            page.wait_for_function(
                "() => /ready: press Start/.test(document.querySelector('.emolib-status').textContent)",
                timeout=90_000)
            # the last cell has run: the kernel is free for the camera
            page.wait_for_function(
                "() => document.body.textContent.includes('wrote ') && "
                "document.body.textContent.includes('frames.csv')", timeout=120_000)
            # a browser without a camera: the message says so, and Start works again afterwards
            page.evaluate("""() => {
                const devices = navigator.mediaDevices;
                window.__emolibRealGetUserMedia = devices.getUserMedia.bind(devices);
                devices.getUserMedia = () => Promise.reject(
                    new DOMException('Requested device not found', 'NotFoundError'));
            }""")
            page.locator("button.emolib-start").click()
            page.wait_for_function(
                "() => /no camera found by the browser/.test(document.querySelector('.emolib-status').textContent)",
                timeout=60_000)
            page.locator("button.emolib-start:not([disabled])").wait_for(timeout=10_000)
            page.evaluate("() => { navigator.mediaDevices.getUserMedia = window.__emolibRealGetUserMedia; }")
            page.locator("button.emolib-start").click()
            page.wait_for_function(
                "() => /camera permission denied/.test(document.querySelector('.emolib-status').textContent)",
                timeout=30_000)
            page.locator("button.emolib-start:not([disabled])").wait_for(timeout=10_000)
            context.grant_permissions(["camera"])
            page.locator("button.emolib-start").click()
            page.wait_for_function(
                "() => /frames shown: [1-9]/.test(document.querySelector('.emolib-status').textContent)",
                timeout=60_000)

            # count the annotated frames the page actually shows, for 10 seconds
            page.evaluate("""() => {
                const image = document.querySelector('img.emolib-annotated');
                window.__emolibFrames = 0;
                new MutationObserver(() => { window.__emolibFrames += 1; })
                    .observe(image, { attributes: true, attributeFilter: ['src'] });
            }""")
            start = time.monotonic()
            page.wait_for_timeout(10_000)
            shown = page.evaluate("() => window.__emolibFrames")
            seconds = time.monotonic() - start
            text = status.text_content()
            bars = page.locator(".emolib-bars").text_content()
            preview = page.locator(".emolib-camera-status").text_content()
            print(f"\nbrowser camera: {shown} annotated frames in {seconds:.1f} s = "
                  f"{shown / seconds:.1f} frames/s shown; status: {text}")
            assert "camera on" in preview
            assert shown >= 10, f"only {shown} annotated frames in {seconds:.0f} s; status: {text}"
            match = re.search(r"1 face: (\w+) \d+%", text)
            assert match and match.group(1) in CLASS_NAMES, text
            assert all(name in bars for name in CLASS_NAMES) and "%" in bars

            page.locator("button.emolib-stop").click()
            page.wait_for_function(
                "() => /stopped after \\d+ frames/.test(document.querySelector('.emolib-status').textContent)",
                timeout=20_000)
        except Exception:
            page.screenshot(path=str(lab["folder"] / "failure.png"))
            print(f"screenshot: {lab['folder'] / 'failure.png'}; server log: "
                  f"{lab['folder'] / 'jupyterlab.log'}")
            raise
        finally:
            browser.close()
