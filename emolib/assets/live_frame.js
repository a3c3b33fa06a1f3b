// emolib live frame (anywidget): the annotated frame and its probability bars, shown together.
// The kernel sets both in one update. The new JPEG is decoded off screen first; then the frame
// and the bars change in the same step, so the label drawn on the frame and the bars always come
// from the same frame (as two widgets, the bars were drawn at once and the frame a decode later,
// so a screenshot could show the label of one frame beside the bars of the next).

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "emolib-live";
  const image = document.createElement("img");
  image.className = "emolib-annotated";
  const bars = document.createElement("div");
  bars.className = "emolib-live-bars";
  root.append(image, bars);
  el.append(root);

  let shownUrl = null;  // the object URL on screen
  let shownBars = null;  // the bars' HTML on screen: unchanged bars keep their elements
  let latest = 0;  // the newest update; an older one that finishes decoding later is dropped
  let scheduled = false;

  async function show() {
    scheduled = false;
    const token = ++latest;
    const data = model.get("value");
    const html = model.get("bars");
    const url = data && data.byteLength
      ? URL.createObjectURL(new Blob([data], { type: "image/jpeg" })) : null;
    if (url) {
      const probe = new Image();
      probe.src = url;
      try { await probe.decode(); } catch (error) { /* not decodable: shown as the browser can */ }
    }
    if (token !== latest) {
      if (url) URL.revokeObjectURL(url);
      return;
    }
    if (url) image.src = url;  // decoded already: on screen in the same paint as the bars
    else image.removeAttribute("src");
    if (html !== shownBars) {
      bars.innerHTML = html;
      shownBars = html;
    }
    image.dataset.frame = String(model.get("frame"));
    bars.dataset.frame = String(model.get("frame"));
    if (shownUrl) URL.revokeObjectURL(shownUrl);
    shownUrl = url;
  }

  // the kernel changes value, bars and frame in one message: show them once, together
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(show);
    }
  };
  const resize = () => { image.style.width = `${model.get("width")}px`; };
  model.on("change:value", schedule);
  model.on("change:bars", schedule);
  model.on("change:frame", schedule);
  model.on("change:width", resize);
  resize();
  show();
  return () => {
    model.off("change:value", schedule);
    model.off("change:bars", schedule);
    model.off("change:frame", schedule);
    model.off("change:width", resize);
    latest += 1;
    if (shownUrl) URL.revokeObjectURL(shownUrl);
  };
}

export default { render };
