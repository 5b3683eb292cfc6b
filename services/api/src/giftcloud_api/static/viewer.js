// The viewer: a series' frames as the server renders them (WADO-RS rendered), one at a time.
// Scroll: the mouse wheel, the arrow keys, Page Up/Down, Home/End, the slider, or Play (cine).
// Drag: window/level (across: width, down: centre; each change is rendered by the server
// from the stored values) or, with the Pan tool or Shift, move the image. Zoom: the + and −
// buttons or keys, Ctrl + wheel. Reset (or 0) puts everything back.
"use strict";

function viewerPage(root) {
  const frames = JSON.parse(root.querySelector("[data-frames]").textContent);
  const image = root.querySelector("[data-image]");
  const stage = root.querySelector("[data-stage]");
  const slider = root.querySelector("[data-slider]");
  const position = root.querySelector("[data-position]");
  const preset = root.querySelector("[data-preset]");
  const windowed = root.querySelector("[data-window]");
  const play = root.querySelector("[data-play]");
  const rate = root.querySelector("[data-rate]");
  const panTool = root.querySelector("[data-tool=pan]");
  let index = 0;
  let retried = false;
  let custom = null;      // [centre, width] chosen by dragging
  let zoom = 1, panX = 0, panY = 0;
  let timer = null;

  // the access cookie lasts minutes: when an image is refused, a fresh one, then again
  image.addEventListener("error", async () => {
    if (retried) return;
    retried = true;
    giftcloud.forget();
    await giftcloud.token();
    show(index);
  });
  image.addEventListener("load", () => { retried = false; });

  const windowParam = () => (custom ? `${custom[0].toFixed(1)},${custom[1].toFixed(1)}` : preset.value);
  const url = (i) => (windowParam() ? `${frames[i]}?window=${windowParam()}` : frames[i]);
  function show(i) {
    index = Math.max(0, Math.min(frames.length - 1, i));
    image.src = url(index);
    slider.value = String(index + 1);
    position.textContent = `${index + 1} / ${frames.length}`;
    stage.setAttribute("aria-label", `Image ${index + 1} of ${frames.length}`);
    windowed.textContent = custom ? `C ${Math.round(custom[0])} / W ${Math.round(custom[1])}` : "";
    for (const near of [index + 1, index + 2, index - 1]) {  // the next ones, ahead
      if (near >= 0 && near < frames.length) new Image().src = url(near);
    }
  }

  function place() {
    image.style.transform = `translate(${panX}px, ${panY}px) scale(${zoom})`;
    root.dataset.zoom = zoom.toFixed(2);
  }
  function zoomBy(factor) {
    zoom = Math.max(0.25, Math.min(16, zoom * factor));
    place();
  }
  function reset() {
    zoom = 1; panX = 0; panY = 0; custom = null; preset.value = "";
    place(); show(index);
  }

  // the window a drag starts from: the one chosen, else the first instance's own, else
  // the range its bits can hold
  async function startingWindow() {
    if (custom) return custom;
    if (preset.value) return preset.value.split(",").map(Number);
    const metadata = frames[index].replace(/\/frames\/\d+\/rendered$/, "/metadata");
    const answer = await giftcloud.call("GET", metadata);
    const first = answer.ok && Array.isArray(answer.body) ? answer.body[0] : {};
    const value = (tag) => (first[tag] && first[tag].Value ? Number(first[tag].Value[0]) : NaN);
    const [centre, width] = [value("00281050"), value("00281051")];
    if (centre === centre && width > 0) return [centre, width];
    const bits = value("00280101") || 12;
    const signed = value("00280103") === 1;
    const slope = value("00281053") || 1, intercept = value("00281052") || 0;
    const low = (signed ? -(2 ** (bits - 1)) : 0) * slope + intercept;
    const high = ((signed ? 2 ** (bits - 1) : 2 ** bits) - 1) * slope + intercept;
    return [(low + high) / 2, Math.max(1, high - low)];
  }

  // a drag: its starting window is fetched as it starts; a drag over before that arrived
  // (a quick flick, a slow server) is applied once it has
  let drag = null;
  stage.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    stage.setPointerCapture(event.pointerId);
    const panning = event.shiftKey || panTool.getAttribute("aria-pressed") === "true";
    const started = { x: event.clientX, y: event.clientY, panning, from: null, last: null, panX, panY, sent: 0 };
    if (!panning) started.ready = startingWindow().then((from) => { started.from = from; });
    drag = started;
  });
  function level(d, at) {
    const [centre, width] = d.from;
    const step = Math.max(width, 1) / 256;  // a pixel of drag: a 256th of the width
    custom = [centre + (at.y - d.y) * step, Math.max(1, width + (at.x - d.x) * step)];
  }
  stage.addEventListener("pointermove", (event) => {
    if (!drag) return;
    if (drag.panning) {
      panX = drag.panX + event.clientX - drag.x; panY = drag.panY + event.clientY - drag.y; place();
      return;
    }
    drag.last = { x: event.clientX, y: event.clientY };
    if (!drag.from) return;
    level(drag, drag.last);
    const now = performance.now();
    if (now - drag.sent > 120) { drag.sent = now; show(index); }  // rendered at most ~8/s
  });
  const end = async () => {
    const ended = drag;
    drag = null;
    if (!ended || ended.panning) return;
    await ended.ready;
    if (ended.last) level(ended, ended.last);
    if (custom) show(index);
  };
  stage.addEventListener("pointerup", end);
  stage.addEventListener("pointercancel", end);

  stage.addEventListener("wheel", (event) => {
    event.preventDefault();
    if (event.ctrlKey || event.metaKey) zoomBy(event.deltaY > 0 ? 1 / 1.2 : 1.2);
    else show(index + (event.deltaY > 0 ? 1 : -1));
  }, { passive: false });
  stage.addEventListener("keydown", (event) => {
    const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1, PageDown: 10, PageUp: -10 }[event.key];
    if (step !== undefined) { event.preventDefault(); show(index + step); }
    else if (event.key === "Home") { event.preventDefault(); show(0); }
    else if (event.key === "End") { event.preventDefault(); show(frames.length - 1); }
    else if (event.key === "+" || event.key === "=") { event.preventDefault(); zoomBy(1.25); }
    else if (event.key === "-") { event.preventDefault(); zoomBy(0.8); }
    else if (event.key === "0") { event.preventDefault(); reset(); }
    else if (event.key === " ") { event.preventDefault(); toggle(); }
  });

  function toggle() {
    if (timer) {
      clearInterval(timer); timer = null;
      play.textContent = "Play"; play.setAttribute("aria-pressed", "false");
      return;
    }
    timer = setInterval(() => show((index + 1) % frames.length), 1000 / Number(rate.value));
    play.textContent = "Pause"; play.setAttribute("aria-pressed", "true");
  }
  play.addEventListener("click", toggle);
  rate.addEventListener("change", () => { if (timer) { toggle(); toggle(); } });
  play.disabled = frames.length < 2;

  slider.addEventListener("input", () => show(Number(slider.value) - 1));
  preset.addEventListener("change", () => { custom = null; show(index); });
  root.querySelector("[data-zoom-in]").addEventListener("click", () => zoomBy(1.25));
  root.querySelector("[data-zoom-out]").addEventListener("click", () => zoomBy(0.8));
  root.querySelector("[data-reset]").addEventListener("click", reset);
  panTool.addEventListener("click", () => {
    const on = panTool.getAttribute("aria-pressed") !== "true";
    panTool.setAttribute("aria-pressed", String(on));
    stage.classList.toggle("panning", on);
  });
  place();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("[data-viewer]")) viewerPage(node);
});
