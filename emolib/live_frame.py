"""The webcam demo's annotated frame and its probability bars, as one widget.

As two widgets (an ``Image`` and an ``HTML``) the bars were drawn as soon as they arrived and the
frame only after the browser had decoded its JPEG, so the label on the frame and the bars could
show two different frames (60% on the frame, 51% in the bars). ``LiveFrame.show`` sends the frame
and its bars in one message, and the browser swaps them in the same step
(``assets/live_frame.js``).

    >>> view = LiveFrame(value=jpeg_bytes, bars="<div>...</div>")
    >>> view.show(next_jpeg, next_bars)     # one update; the page shows both or neither
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

_CSS = """
.emolib-live { display: flex; flex-flow: row wrap; align-items: flex-start; gap: 8px; }
.emolib-live img.emolib-annotated { max-width: 100%; height: auto; flex: 0 1 auto; }
.emolib-live-bars { flex: 0 0 auto; }
"""


class LiveFrame(anywidget.AnyWidget):
    """The annotated frame (``value``, JPEG bytes, as ``ipywidgets.Image``) beside its bars
    (``bars``, HTML); ``frame`` counts the updates. The frame scales down with the panel and the
    bars wrap below it when the panel is narrow."""

    _esm = Path(__file__).resolve().parent / "assets" / "live_frame.js"
    _css = _CSS
    value = traitlets.Bytes(b"").tag(sync=True)
    bars = traitlets.Unicode("").tag(sync=True)
    frame = traitlets.Int(0).tag(sync=True)
    width = traitlets.Int(640).tag(sync=True)  #: the frame's width in the page, at most

    def show(self, value: bytes, bars: str | None = None) -> None:
        """Show a new frame with its bars (``None``: keep the bars) in one update."""
        with self.hold_sync():
            self.value = value
            if bars is not None:
                self.bars = bars
            self.frame += 1
