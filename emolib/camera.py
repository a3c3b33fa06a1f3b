"""The live webcam demo of notebook 05.

``WebcamDemo`` is the UI: Start/Stop, the live annotated frame, per-emotion probability bars,
and controls for the camera (browser or the kernel machine's own), detector, model and
smoothing. Every frame goes through ``realtime.Pipeline``. The cameras themselves (the browser's,
the kernel machine's) are in ``emolib.cameras``.

    >>> from emolib import camera
    >>> camera.WebcamDemo()          # last expression of a cell: shows the UI
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path

import numpy as np

from emolib import CLASS_NAMES
from emolib.cameras import BrowserCamera, KernelCamera, decode_jpeg, encode_jpeg  # noqa: F401
from emolib.errors import EmolibError
from emolib.live_frame import LiveFrame

#: frames shown before the status and the frame show a frames/s figure
MIN_FRAMES_FOR_FPS = 8


def _placeholder(text: str, size: tuple = (640, 480)) -> bytes:
    import cv2

    width, height = size
    image = np.full((height, width, 3), 40, np.uint8)
    cv2.putText(image, text, (24, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (220, 220, 220), 2,
                cv2.LINE_AA)
    return encode_jpeg(image)


def probability_bars(probabilities: np.ndarray | None, title: str = "") -> str:
    """HTML bars, one per emotion, for one face's probabilities (or a 'no face' note)."""
    from emolib.annotation import COLORS

    rows = [f"<div style='font-weight:600;margin-bottom:4px'>{html.escape(title)}</div>"]
    if probabilities is None:
        rows.append("<div style='color:#777'>no face in view</div>")
        probabilities = np.zeros(len(CLASS_NAMES))
    top = int(np.argmax(probabilities)) if np.any(probabilities) else -1
    for index, (name, value) in enumerate(zip(CLASS_NAMES, probabilities)):
        blue, green, red = COLORS[name]
        weight = "700" if index == top else "400"
        rows.append(
            f"<div class='emolib-bar' data-emotion='{name}' style='display:flex;align-items:center;"
            f"gap:6px;font-weight:{weight};font-family:monospace'>"
            f"<span style='width:70px'>{name}</span>"
            f"<span style='width:160px;height:12px;background:#eee;display:inline-block'>"
            f"<span style='display:block;height:12px;width:{100 * float(value):.1f}%;"
            f"background:rgb({red},{green},{blue})'></span></span>"
            f"<span style='width:44px;text-align:right'>{100 * float(value):.0f}%</span></div>")
    return "<div class='emolib-bars'>" + "".join(rows) + "</div>"


class WebcamDemo:
    """The live demo: camera (browser or kernel), Start/Stop, annotated frame, probability bars.

    Display it as a cell's last expression. ``model_path`` ``""`` is the default model (see
    ``registry.resolve``). Problems (no camera, permission denied, no model, a bad
    frame) are shown in the status line and the log below; the demo keeps running.
    """

    def __init__(self, model_path: str = "", detector: str = "haar", smoothing: float = 0.6,
                 camera: str = "browser", max_fps: float = 30.0, width: int = 640):
        import ipywidgets as widgets

        from emolib import registry

        if camera not in ("browser", "kernel"):
            raise EmolibError(f"camera={camera!r}: use 'browser' (this browser's camera) or "
                              "'kernel' (a camera on the machine running the kernel)")
        self.pipeline = None
        self.frames_shown = 0
        self.last_result = None
        self._lock = threading.Lock()

        models = {self._model_label(p): str(p.resolve()) for p in registry.find_models()}
        selected = str(Path(model_path).expanduser().resolve()) if model_path else ""
        if selected and selected not in models.values():
            models = {self._model_label(Path(selected)) + " (given)": selected, **models}
        if not models:
            models = {"(no model found)": ""}
        selected = selected or next(iter(models.values()))

        self.camera_choice = widgets.ToggleButtons(
            options=[("Browser camera", "browser"), ("Kernel camera", "kernel")], value=camera,
            tooltips=["the camera of the computer running this browser",
                      "a camera on the machine running the kernel (cv2.VideoCapture)"])
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.start_button.add_class("emolib-start")
        self.stop_button.add_class("emolib-stop")
        self.detector_choice = widgets.Dropdown(options=["haar", "mtcnn"], value=detector,
                                                description="Detector")
        self.model_choice = widgets.Dropdown(options=list(models.items()), value=selected,
                                             description="Model",
                                             layout=widgets.Layout(width="360px"))
        self.smoothing_slider = widgets.FloatSlider(value=smoothing, min=0.0, max=0.95, step=0.05,
                                                    description="Smoothing")
        self.status = widgets.HTML("camera off")
        self.status.add_class("emolib-status")
        # the frame and its bars in one widget, changed together: the label on the frame and the
        # bars show the same frame; the frame scales down with the panel, the bars wrap below it
        self.image = LiveFrame(value=_placeholder("press Start"),
                               bars=probability_bars(None, "probabilities"), width=width)
        self.heatmap_toggle = widgets.ToggleButton(
            value=False, description="Heatmap", icon="eye",
            tooltip="overlay each face with where the model looks (Grad-CAM of its Keras model, "
            "for the emotion shown); costs frames/s")
        self.heatmap_toggle.add_class("emolib-heatmap")
        self._explainer = None
        self._last_frame = None
        self.log = widgets.Output(layout=widgets.Layout(max_height="120px", overflow="auto"))
        self.browser_camera = BrowserCamera(on_frame=self._on_browser_frame,
                                            on_event=self._on_camera_event, max_fps=max_fps,
                                            width=width, height=width * 3 // 4)
        self.kernel_camera = KernelCamera(
            on_frame=lambda frame: self.process_frame(frame, "kernel camera"),
            on_error=lambda message: self._say(message, error=True),
            on_stop=lambda: self._set_buttons(running=False))

        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.detector_choice.observe(lambda _: self._build_pipeline(), "value")
        self.model_choice.observe(lambda _: self._build_pipeline(), "value")
        self.smoothing_slider.observe(self._on_smoothing, "value")
        self.browser_camera.observe(self._on_browser_running, "running")
        self.camera_choice.observe(self._on_camera_choice, "value")

        wrap = widgets.Layout(flex_flow="row wrap", align_items="flex-start")
        self.widget = widgets.VBox([
            widgets.HBox([self.camera_choice, self.start_button, self.stop_button,
                          self.heatmap_toggle], layout=wrap),
            widgets.HBox([self.detector_choice, self.model_choice, self.smoothing_slider],
                         layout=wrap),
            self.status,
            self.image,
            self.browser_camera,
            self.log,
        ])
        self._build_pipeline()

    # -- display

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    @staticmethod
    def _model_label(path: Path) -> str:
        from emolib.registry import default_model, int8_companion

        path = Path(path)
        # what runs: the int8 copy beside a .keras file (the "auto" backend), else the file
        runs = int8_companion(path).name if int8_companion(path).exists() else path.name
        shown = runs if runs == path.name else f"{runs}, from {path.name}"
        return f"default ({shown})" if path == default_model() else f"{path.parent.name}/{shown}"

    def _say(self, text: str, error: bool = False) -> None:
        color = "#c0392b" if error else "#333"
        self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"
        if error:
            self.log.append_stderr(f"{time.strftime('%H:%M:%S')} {text}\n")

    # -- controls

    def _build_pipeline(self) -> None:
        from emolib import realtime

        self._say("loading the model…")
        try:
            pipeline = realtime.Pipeline(self.model_choice.value or "",
                                         detector=self.detector_choice.value,
                                         smoothing=self.smoothing_slider.value)
        except EmolibError as error:
            self._say(str(error), error=True)
            return
        pipeline.annotate = False  # drawn here: frames/s once measured, the heatmaps
        with self._lock:
            self.pipeline = pipeline
            self._explainer = None
        self.log.append_stdout(f"{pipeline.note}; detector {pipeline.detector_name}\n")
        self._say("ready: press Start" if not self.running else "pipeline changed")

    def _on_smoothing(self, change) -> None:
        if self.pipeline is not None:
            self.pipeline.smoothing = float(change["new"])

    @property
    def running(self) -> bool:
        """Whether a camera is on."""
        return self.browser_camera.running or self.kernel_camera.running

    def start(self) -> None:
        """Start the chosen camera (what the Start button does)."""
        if self.pipeline is None:
            self._build_pipeline()
            if self.pipeline is None:
                return
        self.frames_shown = 0
        self.pipeline.reset()
        self._set_buttons(running=True)
        if self.camera_choice.value == "browser":
            self._say("starting the browser camera…")
            self.browser_camera.running = True
        elif not self.kernel_camera.available():
            self._say("no camera on the kernel's machine (cv2.VideoCapture(0) gives no frames); "
                      "choose the browser camera, or run notebook 05 headless on a video",
                      error=True)
            self._set_buttons(running=False)
        else:
            self.kernel_camera.start()

    def stop(self) -> None:
        """Stop the camera (what the Stop button does)."""
        self.browser_camera.running = False
        self.kernel_camera.stop()
        self._set_buttons(running=False)
        if self._last_frame is not None and self.last_result is not None:
            # the frozen frame keeps its boxes and labels, not a frames/s figure that is over
            self.image.show(encode_jpeg(self._draw(self._last_frame, self.last_result, None)))
        self._say(f"stopped after {self.frames_shown} frames")

    def _set_buttons(self, running: bool) -> None:
        self.start_button.disabled = running
        self.stop_button.disabled = not running
        self.camera_choice.disabled = running

    def _on_camera_choice(self, change) -> None:
        """A new camera: an error about the other one no longer applies."""
        self.browser_camera.note = ("camera off" if change["new"] == "browser"
                                    else "browser camera not in use (kernel camera chosen)")
        self._say("ready: press Start")

    def _on_browser_running(self, change) -> None:
        if not change["new"]:
            self._set_buttons(running=False)  # also when the browser gave up (error, unplugged)

    def _on_camera_event(self, kind: str, message: str) -> None:
        if kind == "error":
            self._say(message, error=True)
        else:
            self._say(message)
            self.log.append_stdout(f"{time.strftime('%H:%M:%S')} {message}\n")

    # -- frames

    def process_frame(self, frame: np.ndarray, camera_name: str = "browser camera") -> None:
        """Run one frame through the pipeline and show it (frame, bars, status)."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        result = pipeline.process(frame)
        self.frames_shown += 1
        # the first frames arrive back to back: a rate over them is meaningless (it read 120)
        fps = result.fps if self.frames_shown >= MIN_FRAMES_FOR_FPS else 0.0
        self._last_frame = frame
        self.last_result = result
        if result.faces:
            face = result.faces[0]  # titled with the label drawn on its box
            bars = probability_bars(face.probabilities, face.label)
            found = f"{len(result.faces)} face{'s' if len(result.faces) > 1 else ''}: " + ", ".join(
                f"{f.emotion} {f.confidence:.0%}" for f in result.faces)  # no ids: a summary
        else:
            bars = probability_bars(None, "probabilities")
            found = "no face in view"
        self.image.show(encode_jpeg(self._draw(frame, result, fps)), bars)
        rate = f"{fps:.1f} frames/s" if fps else "measuring frames/s"
        self.status.value = (f"{camera_name} · {rate} · "
                             f"{result.latency_ms:.0f} ms per frame · frames shown: "
                             f"{self.frames_shown} · {html.escape(found)}")

    def _draw(self, frame: np.ndarray, result, fps: float | None) -> np.ndarray:
        """The annotated frame, with each face's heatmap when the Heatmap toggle is on."""
        from emolib import annotation, explain

        if not (self.heatmap_toggle.value and result.faces):
            return annotation.annotate(frame, result.faces, fps=fps)
        if self._explainer is None:  # built on first use: tracing costs a second or two
            self._explainer = explain.Explainer(self.pipeline)
        return annotation.explain_frame(frame, result.faces, self._explainer,
                                        margin=self.pipeline.margin, fps=fps)

    def _on_browser_frame(self, frame: np.ndarray) -> None:
        if self.browser_camera.running:  # frames still in flight after Stop are dropped
            self.process_frame(frame, "browser camera")
