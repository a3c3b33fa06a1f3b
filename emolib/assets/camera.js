// emolib browser camera (anywidget): getUserMedia -> JPEG -> kernel, one custom message per frame
// with the JPEG as a binary buffer. The kernel acknowledges every frame; no more than
// `max_in_flight` frames are unacknowledged, so a slow kernel gets fewer frames, not a backlog.
// getUserMedia needs a secure context: https, or http://localhost.

const ERRORS = {
  NotAllowedError: "camera permission denied: allow the camera for this page (the camera icon " +
    "in the address bar or the site settings), then press Start again",
  SecurityError: "the browser blocked the camera (it needs https or http://localhost)",
  NotFoundError: "no camera found by the browser: plug one in, or choose the kernel camera",
  OverconstrainedError: "the camera cannot deliver the requested size",
  NotReadableError: "the camera is busy or failed (is another application using it?)",
  AbortError: "the camera failed to start; press Start to try again",
};

// Which view of a widget captures (a widget shown twice must not open the camera twice).
const owners = new Map();

function render({ model, el }) {
  const view = Symbol("view");
  const root = document.createElement("div");
  root.className = "emolib-camera";
  const video = document.createElement("video");
  video.className = "emolib-camera-preview";
  video.muted = true;
  video.playsInline = true;
  video.autoplay = true;
  const status = document.createElement("span");
  status.className = "emolib-camera-status";
  root.append(video, status);
  el.append(root);
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d");

  let stream = null;
  let starting = false;
  let timer = null;
  let inFlight = 0;
  let frameId = 0;
  let lastSend = 0;
  let lastAck = 0;

  const say = (text) => { status.textContent = text; };
  const report = (type, message) => { say(message); model.send({ type, message }); };
  const setRunning = (value) => {
    if (model.get("running") !== value) {
      model.set("running", value);
      model.save_changes();
    }
  };
  const token = () => model.get("_token");

  async function start() {
    if (stream || starting) return;
    const owner = owners.get(token());
    if (owner && owner !== view) return;  // another view of this widget is capturing
    owners.set(token(), view);
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      report("error", `the browser camera needs https or http://localhost; this page is ` +
        `${location.origin} (open it through localhost, an SSH tunnel or https)`);
      release();
      setRunning(false);
      return;
    }
    starting = true;
    say("asking the browser for the camera…");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { width: { ideal: model.get("width") }, height: { ideal: model.get("height") } },
      });
    } catch (error) {
      starting = false;
      report("error", ERRORS[error.name] || `camera error: ${error.name}: ${error.message}`);
      release();
      setRunning(false);
      return;
    }
    starting = false;
    if (!model.get("running")) {  // Stop was pressed while the browser was asking
      stop();
      return;
    }
    const track = stream.getVideoTracks()[0];
    track.addEventListener("ended", () => {
      report("error", "the camera stopped (unplugged, or taken by another application)");
      stop();
      setRunning(false);
    });
    video.srcObject = stream;
    try { await video.play(); } catch (error) { /* autoplay of a muted video is allowed */ }
    const settings = track.getSettings ? track.getSettings() : {};
    model.send({ type: "started", label: track.label || "camera",
                 width: settings.width || video.videoWidth, height: settings.height || video.videoHeight });
    say(`camera on: ${track.label || "camera"}`);
    inFlight = 0;
    lastAck = performance.now();
    tick();
  }

  function tick() {
    timer = null;
    if (!stream) return;
    const now = performance.now();
    if (inFlight > 0 && now - lastAck > 5000) inFlight = 0;  // acks lost: kernel restarted or busy
    const interval = 1000 / Math.max(1, model.get("max_fps"));
    if (inFlight < model.get("max_in_flight") && video.readyState >= 2 && now - lastSend >= interval) {
      lastSend = now;
      sendFrame();
    }
    timer = setTimeout(tick, 4);
  }

  function sendFrame() {
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) return;
    const scale = Math.min(1, model.get("width") / width);
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    inFlight += 1;
    const id = ++frameId;
    canvas.toBlob(async (blob) => {
      if (!blob || !stream) {
        inFlight = Math.max(0, inFlight - 1);
        return;
      }
      const buffer = await blob.arrayBuffer();
      model.send({ type: "frame", id, width: canvas.width, height: canvas.height }, undefined, [buffer]);
    }, "image/jpeg", model.get("quality"));
  }

  function release() {
    if (owners.get(token()) === view) owners.delete(token());
  }

  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    inFlight = 0;
    release();
  }

  function onMessage(message) {
    if (message && message.type === "ack") {
      inFlight = Math.max(0, inFlight - 1);
      lastAck = performance.now();
    }
  }

  function onRunning() {
    if (model.get("running")) {
      start();
    } else {
      const wasOn = stream !== null;
      stop();
      if (wasOn) say("camera off");
    }
  }

  const onNote = () => { if (!stream && model.get("note")) say(model.get("note")); };
  model.on("msg:custom", onMessage);
  model.on("change:running", onRunning);
  model.on("change:note", onNote);
  say("camera off");
  if (model.get("running")) start();
  const stopRevealing = model.get("reveal") ? reveal(el) : () => {};
  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:running", onRunning);
    model.off("change:note", onNote);
    stopRevealing();
    stop();
  };
}

// After "Run All" JupyterLab leaves the page at the last cell, far below the demo: bring the
// demo's output into view when it appears, and again while later cells run, until the person
// scrolls, clicks or types (then the page is theirs).
function reveal(el) {
  const target = () => el.closest(".jp-OutputArea-output") || el.closest(".jp-Cell") || el;
  const timers = [0, 400, 1500, 3000, 6000, 10000, 20000, 30000].map((delay) =>
    setTimeout(() => {
      const top = target();
      if (document.body.contains(top)) top.scrollIntoView({ block: "start" });
    }, delay));
  const events = ["wheel", "mousedown", "keydown", "touchstart"];
  const cancel = () => {
    timers.forEach(clearTimeout);
    events.forEach((name) => window.removeEventListener(name, cancel, true));
  };
  events.forEach((name) => window.addEventListener(name, cancel, true));
  return cancel;
}

export default { render };
