"""The two cameras the webcam demo reads: the browser's and the kernel machine's.

``BrowserCamera`` runs ``getUserMedia`` in the browser and sends each frame to the kernel as a
JPEG (a custom message with a binary buffer); the kernel acknowledges every frame, so a slow
kernel receives fewer frames instead of a growing backlog. It works when the kernel is remote
(JupyterHub, a server over an SSH tunnel), because frames travel over the notebook's own
connection. The browser only allows cameras on https or http://localhost pages.

``KernelCamera`` reads a camera of the machine running the kernel (``cv2.VideoCapture``) in a
thread, so the cell and the Stop button stay free.

Both hand BGR frames to an ``on_frame(frame)`` callback; ``camera.WebcamDemo`` is the UI.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from emolib.errors import EmolibError

_ASSETS = Path(__file__).resolve().parent / "assets"
_CSS = """
.emolib-camera { display: flex; align-items: center; gap: 8px; font-size: 12px; }
.emolib-camera-preview { width: 120px; height: 90px; background: #222; border-radius: 3px; }
.emolib-camera-status { color: #555; }
"""


def decode_jpeg(buffer) -> np.ndarray | None:
    """BGR frame from JPEG (or PNG) bytes; None when they are not a decodable image."""
    import cv2

    data = np.frombuffer(buffer, np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """JPEG bytes of a BGR frame (what the ``Image`` widget shows)."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EmolibError(f"could not encode a frame of shape {image.shape} as JPEG")
    return encoded.tobytes()


class BrowserCamera(anywidget.AnyWidget):
    """The browser's camera: set ``running`` to start/stop; frames arrive in ``on_frame(frame)``.

    ``on_event(kind, message)`` hears ``"started"`` and ``"error"`` (permission denied, no
    camera, insecure page, undecodable frame); the message is meant for people.
    """

    _esm = _ASSETS / "camera.js"
    _css = _CSS
    running = traitlets.Bool(False).tag(sync=True)
    width = traitlets.Int(640).tag(sync=True)  #: frames wider than this are downscaled in the browser
    height = traitlets.Int(480).tag(sync=True)
    quality = traitlets.Float(0.8).tag(sync=True)  #: JPEG quality of the frames sent, 0-1
    max_fps = traitlets.Float(30.0).tag(sync=True)
    max_in_flight = traitlets.Int(2).tag(sync=True)  #: frames sent but not yet acknowledged
    #: the preview's status line, set by the kernel (clears a stale error when the camera changes)
    note = traitlets.Unicode("").tag(sync=True)
    #: scroll the demo into view when it is first shown (after "Run All" the page sits at the end)
    reveal = traitlets.Bool(True).tag(sync=True)
    _token = traitlets.Unicode("").tag(sync=True)

    def __init__(self, on_frame: Callable | None = None, on_event: Callable | None = None, **kwargs):
        super().__init__(**kwargs)
        self._token = uuid.uuid4().hex
        self.on_frame = on_frame
        self.on_event = on_event
        self.frames_received = 0
        self.last_error = ""
        # not `_handle_msg`: that name would replace ipywidgets' own message dispatch
        self.on_msg(self._on_custom_message)

    def _on_custom_message(self, widget, content, buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "frame":
            try:
                frame = decode_jpeg(buffers[0]) if buffers else None
                if frame is None:
                    self._event("error", f"camera frame {content.get('id')} could not be decoded; "
                                "skipped")
                    return
                self.frames_received += 1
                if self.on_frame is not None:
                    self.on_frame(frame)
            except Exception as error:  # a failing frame must not stop the camera
                self._event("error", f"frame {content.get('id')}: {type(error).__name__}: {error}")
            finally:
                self.send({"type": "ack", "id": content.get("id")})
        elif kind in ("started", "error"):
            message = content.get("message") or (
                f"browser camera on: {content.get('label', 'camera')} "
                f"({content.get('width')}x{content.get('height')})")
            self._event(kind, message)

    def _event(self, kind: str, message: str) -> None:
        if kind == "error":
            self.last_error = message
        if self.on_event is not None:
            self.on_event(kind, message)


class KernelCamera:
    """A camera on the kernel's machine (``cv2.VideoCapture(index)``) read in a thread.

    ``start()`` returns at once; every frame goes to ``on_frame(frame)``, a problem to
    ``on_error(message)`` (the loop goes on after a failing frame), and ``on_stop()`` is called
    when the loop ends, whether by ``stop()`` or because the camera stopped giving frames.
    """

    def __init__(self, on_frame: Callable, on_error: Callable, on_stop: Callable, index: int = 0):
        self.on_frame, self.on_error, self.on_stop, self.index = on_frame, on_error, on_stop, index
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    def available(self) -> bool:
        """Whether the camera gives frames (checked before ``start``)."""
        from emolib import sources

        return sources.kernel_camera_available(self.index)

    @property
    def running(self) -> bool:
        """Whether the reading thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start reading in a daemon thread."""
        self._stop_event = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(self._stop_event,),
                                        daemon=True, name="emolib-kernel-camera")
        self._thread.start()

    def stop(self, timeout: float = 2) -> None:
        """Ask the thread to end and wait for it (at most ``timeout`` seconds)."""
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self, stop_event: threading.Event) -> None:
        import cv2

        capture = cv2.VideoCapture(self.index)
        failures = 0
        try:
            while not stop_event.is_set():
                ok, frame = capture.read()
                if not ok:
                    failures += 1
                    if failures >= 20:
                        self.on_error("the kernel's camera stopped giving frames")
                        break
                    time.sleep(0.05)
                    continue
                failures = 0
                try:
                    self.on_frame(frame)
                except Exception as error:  # keep the loop alive; say what went wrong
                    self.on_error(f"frame failed: {type(error).__name__}: {error}")
        finally:
            capture.release()
            self.on_stop()
