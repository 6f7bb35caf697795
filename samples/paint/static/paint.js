// GauGAN paint: label ids live in a Uint8Array at the model's size; the canvas shows them in palette colours.
// Each change schedules one request (debounced); a newer request aborts the one in flight. The mask travels as
// an 8-bit grayscale PNG of the ids (encoded here: CompressionStream("deflate") gives PNG's zlib stream).
"use strict";

const DEBOUNCE_MS = 120;
const UNDO_DEPTH = 50;

const paint = {
  model: null, ids: null, width: 0, height: 0, colors: [], label: 0, undo: [],
  seed: 0, style: null, timer: 0, inflight: null, generation: 0,
};
window.paint = paint;

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");

// ------------------------------------------------------------------ start-up
async function start() {
  const response = await fetch("/api/model");
  const model = await response.json();
  if (!response.ok) return showError(model.error);
  paint.model = model;
  paint.width = canvas.width = model.width;
  paint.height = canvas.height = model.height;
  paint.ids = new Uint8Array(model.width * model.height);
  paint.colors = model.labels.map((l) => hexToRgb(l.color));
  $("model").textContent = `${model.artifact} · ${model.backend} · ${model.height}×${model.width} · ` +
    `${model.labels.length} labels`;
  buildPalette(model.labels);
  $("style-box").hidden = !model.style;
  $("seed").disabled = $("reseed").disabled = !model.seeded;
  if (!model.seeded) $("seed").title = "this model has no style path: the seed does not change the image";
  const sky = model.labels.find((l) => l.name === "sky");
  paint.ids.fill(sky ? sky.id : 0);
  render();
  schedule();
}

function buildPalette(labels) {
  const box = $("palette");
  for (const label of labels) {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "radio");
    button.dataset.id = label.id;
    button.innerHTML = `<span class="swatch" style="background:${label.color}"></span>`;
    button.append(`${label.id} ${label.name}`);
    button.addEventListener("click", () => selectLabel(label.id));
    box.append(button);
  }
  selectLabel(labels[0].id);
}

function selectLabel(id) {
  paint.label = id;
  for (const b of $("palette").children) b.setAttribute("aria-checked", String(Number(b.dataset.id) === id));
}

// ------------------------------------------------------------------ drawing on ids
function render() {
  const image = ctx.createImageData(paint.width, paint.height);
  const px = image.data;
  for (let i = 0; i < paint.ids.length; i++) {
    const c = paint.colors[paint.ids[i]] || [0, 0, 0];
    px[4 * i] = c[0]; px[4 * i + 1] = c[1]; px[4 * i + 2] = c[2]; px[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

function stamp(cx, cy) {  // a filled disc of the brush size, in label pixels
  const r = Number($("size").value) / 2;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(paint.width - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(paint.height - 1, Math.ceil(cy + r));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r + 0.25) paint.ids[y * paint.width + x] = paint.label;
    }
  }
}

function line(a, b) {
  const steps = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) / Math.max(1, Number($("size").value) / 4)));
  for (let s = 1; s <= steps; s++) stamp(a.x + (b.x - a.x) * s / steps, a.y + (b.y - a.y) * s / steps);
}

function fill(x, y) {  // 4-connected flood fill of the region under (x, y)
  const w = paint.width, h = paint.height, ids = paint.ids;
  const target = ids[y * w + x];
  if (target === paint.label) return;
  const stack = [y * w + x];
  while (stack.length) {
    const i = stack.pop();
    if (ids[i] !== target) continue;
    ids[i] = paint.label;
    const px = i % w;
    if (px > 0) stack.push(i - 1);
    if (px < w - 1) stack.push(i + 1);
    if (i >= w) stack.push(i - w);
    if (i < w * (h - 1)) stack.push(i + w);
  }
}

function pointAt(event) {
  const box = canvas.getBoundingClientRect();
  return { x: (event.clientX - box.left) * paint.width / box.width,
           y: (event.clientY - box.top) * paint.height / box.height };
}

function remember() {
  paint.undo.push(paint.ids.slice());
  if (paint.undo.length > UNDO_DEPTH) paint.undo.shift();
  $("undo").disabled = false;
}

function undo() {
  if (!paint.undo.length) return;
  paint.ids = paint.undo.pop();
  $("undo").disabled = !paint.undo.length;
  render();
  schedule();
}

let last = null;
canvas.addEventListener("pointerdown", (event) => {
  if (!paint.ids) return;
  remember();
  const p = pointAt(event);
  if (document.querySelector("input[name=tool]:checked").value === "fill") {
    fill(Math.min(paint.width - 1, Math.floor(p.x)), Math.min(paint.height - 1, Math.floor(p.y)));
  } else {
    canvas.setPointerCapture(event.pointerId);
    stamp(p.x, p.y);
    last = p;
  }
  render();
  schedule();
});
canvas.addEventListener("pointermove", (event) => {
  if (!last) return;
  const p = pointAt(event);
  line(last, p);
  last = p;
  render();
  schedule();
});
const endStroke = () => { last = null; };
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

// ------------------------------------------------------------------ requests
function schedule() {
  clearTimeout(paint.timer);
  paint.timer = setTimeout(synthesize, DEBOUNCE_MS);
}

async function synthesize() {
  paint.timer = 0;  // nothing scheduled any more
  if (paint.inflight) paint.inflight.abort();  // superseded
  const controller = new AbortController();
  paint.inflight = controller;
  const params = new URLSearchParams();
  if (paint.model.seeded) params.set("seed", String(paint.seed));
  if (paint.style) params.set("style", paint.style);
  const started = performance.now();
  try {
    const body = await labelPng(paint.ids, paint.width, paint.height);
    const response = await fetch(`/api/synthesize?${params}`, {
      method: "POST", body, headers: { "Content-Type": "image/png" }, signal: controller.signal });
    if (!response.ok) return showError((await response.json()).error);
    const blob = await response.blob();
    const output = $("output");
    if (output.src) URL.revokeObjectURL(output.src);
    output.src = URL.createObjectURL(blob);
    await output.decode();
    output.dataset.generation = String(++paint.generation);
    $("status").className = "muted";
    $("status").textContent = `${Math.round(performance.now() - started)} ms · mask ${body.size} bytes · ` +
      `seed ${paint.model.seeded ? paint.seed : "n/a"}${paint.style ? " · styled" : ""}`;
  } catch (error) {
    if (error.name !== "AbortError") showError(String(error));
  } finally {
    if (paint.inflight === controller) paint.inflight = null;
  }
}

function showError(message) {
  $("status").className = "error";
  $("status").textContent = message;
}

// ------------------------------------------------------------------ label PNG (8-bit grayscale)
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function labelPng(ids, width, height) {
  const raw = new Uint8Array((width + 1) * height);  // filter byte 0, then one row of ids
  for (let y = 0; y < height; y++) raw.set(ids.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const zlib = new Uint8Array(await new Response(
    new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8;  // bit depth; colour type 0 (grayscale), deflate, adaptive filtering, no interlace
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob([signature, chunk("IHDR", header), chunk("IDAT", zlib), chunk("IEND", new Uint8Array())],
                  { type: "image/png" });
}

// ------------------------------------------------------------------ controls
$("size").addEventListener("input", () => { $("size-value").textContent = $("size").value; });
$("undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
});
$("seed").addEventListener("change", () => {
  const value = Number($("seed").value);
  if (!Number.isInteger(value) || value < 0 || value > 4294967295) return showError(`seed ${$("seed").value}: 0..4294967295`);
  paint.seed = value;
  schedule();
});
$("reseed").addEventListener("click", () => {
  paint.seed = Math.floor(Math.random() * 4294967296);
  $("seed").value = paint.seed;
  schedule();
});
$("style").addEventListener("change", async () => {
  const file = $("style").files[0];
  if (!file) return;
  const response = await fetch("/api/style", { method: "POST", body: file,
                                               headers: { "Content-Type": file.type || "application/octet-stream" } });
  const answer = await response.json();
  if (!response.ok) return showError(answer.error);
  paint.style = answer.style;
  $("style-thumb").src = URL.createObjectURL(file);
  $("style-thumb").hidden = $("style-clear").hidden = false;
  schedule();
});
$("style-clear").addEventListener("click", () => {
  paint.style = null;
  $("style").value = "";
  $("style-thumb").hidden = $("style-clear").hidden = true;
  schedule();
});

function hexToRgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

start().catch((error) => showError(String(error)));
