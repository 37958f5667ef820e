// mhinr's web page: plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, job: null, events: null, previewTimer: null, history: [], limits: null };

function authHeaders() {
  const key = $("apikey").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function fmtBytes(n) {
  if (n == null) return "—";
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`;
}

async function loadLimits() {
  const r = await fetch("/limits");
  const l = (state.limits = await r.json());
  $("limits").textContent =
    `Limits: ${fmtBytes(l.max_upload_bytes)} per file, ${(l.max_pixels / 1e6).toFixed(0)} megapixels; ` +
    `renders up to ${l.max_render_side} px a side.` + (l.api_key_required ? " This server needs an API key." : "");
  $("zoom").max = String(l.max_render_side);
}

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  $("chosen").textContent = `${file.name} — ${fmtBytes(file.size)}`;
  $("submit").disabled = false;
  showError("");
}

async function submit(ev) {
  ev.preventDefault();
  if (!state.file) return;
  showError("");
  const form = new FormData();
  form.append("file", state.file);
  for (const id of ["preset", "steps", "heads", "quantization"]) {
    const el = $(id);
    if (el.value !== "") form.append(el.name, el.value);
  }
  const kind = $("target-kind").value, value = $("target").value;
  if (kind && value !== "") {  // the size in kB is sent as bytes
    form.append(kind, kind === "max_bytes" ? String(Math.round(Number(value) * 1000)) : value);
  }
  $("submit").disabled = true;
  try {
    const r = await fetch("/fit", { method: "POST", body: form, headers: authHeaders() });
    const body = await r.json().catch(() => ({ detail: `the server answered ${r.status}` }));
    if (!r.ok) {
      showError(`Refused (${r.status}): ${body.detail}`);
      return;
    }
    remember(body.job_id, state.file.name);
    watch(body.job_id);
  } catch (e) {
    showError(`Could not reach the server: ${e}`);
  } finally {
    $("submit").disabled = false;
  }
}

function remember(job, name) {
  const jobs = JSON.parse(localStorage.getItem("mhinr.jobs") || "[]").filter((j) => j.id !== job);
  jobs.unshift({ id: job, name, at: Date.now() });
  localStorage.setItem("mhinr.jobs", JSON.stringify(jobs.slice(0, 20)));
  renderRecent();
}

function renderRecent() {
  const jobs = JSON.parse(localStorage.getItem("mhinr.jobs") || "[]");
  const ul = $("recent");
  ul.replaceChildren();
  if (!jobs.length) {
    ul.innerHTML = "<li class='muted'>none yet</li>";
    return;
  }
  for (const j of jobs) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `#job=${j.id}`;
    a.textContent = `${j.name} — ${new Date(j.at).toLocaleString()}`;
    // the hashchange listener opens it
    li.append(a);
    ul.append(li);
  }
}

function watch(job) {
  state.job = job;
  state.history = [];
  if (location.hash !== `#job=${job}`) location.hash = `job=${job}`;
  if (state.events) state.events.close();
  clearInterval(state.previewTimer);
  $("watch").hidden = false;
  $("watch").classList.remove("failed", "cancelled");
  $("result").hidden = true;
  $("status").textContent = "queued";
  $("cancel").hidden = false;
  $("cancel").disabled = false;
  $("progress").value = 0;
  $("preview").removeAttribute("src");
  drawChart();
  const es = (state.events = new EventSource(`/jobs/${job}/events`));
  es.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    $("progress").max = Math.max(p.total, 1);
    $("progress").value = p.step;
    // a training step (the PSNR before quantization) or, for the codec presets, a file coded
    $("status").textContent = `running — ${p.step} of ${p.total}, PSNR ${p.psnr.toFixed(2)} dB, ${p.elapsed_s.toFixed(1)} s`;
    state.history.push([p.step, p.psnr]);
    drawChart();
  });
  es.addEventListener("status", (e) => {
    const s = JSON.parse(e.data);
    es.close();
    clearInterval(state.previewTimer);
    $("status").textContent = s.status + (s.error ? `: ${s.error}` : "");
    $("cancel").hidden = true;
    if (s.status === "succeeded") {
      $("progress").value = $("progress").max;
      $("preview").src = `/render?job=${job}&format=png`; // the finished reconstruction
      showResult(job);
    } else {  // failed or cancelled: not a full bar
      $("progress").value = 0;
      $("watch").classList.add(s.status === "failed" ? "failed" : "cancelled");
      if (s.status === "cancelled") $("status").textContent = "cancelled — nothing was kept";
      if (s.status === "failed") $("status").textContent = `failed: ${s.error || "no reason given"}`;
    }
  });
  es.onerror = () => { /* the browser reconnects by itself; the status event ends it */ };
  state.previewTimer = setInterval(() => {
    const img = new Image();
    img.onload = () => { $("preview").src = img.src; };
    img.src = `/jobs/${job}/preview?t=${Date.now()}`;
  }, 2500);
  fetch(`/jobs/${job}`).then((r) => r.json()).then((j) => {
    if (j.metrics && j.metrics.psnr_history) state.history = j.metrics.psnr_history;
    drawChart();
  });
}

function drawChart() {
  const c = $("chart"), g = c.getContext("2d");
  const w = c.width, h = c.height, pad = 36;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#9aa4ae";
  g.strokeRect(pad, 8, w - pad - 8, h - pad - 8);
  const pts = state.history.filter((p) => isFinite(p[1]));
  g.fillStyle = "#5b6570";
  g.font = "12px system-ui";
  if (!pts.length) {
    g.fillText("waiting for the first step…", pad + 10, h / 2);
    return;
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const y0 = Math.floor(Math.min(...ys)), y1 = Math.ceil(Math.max(...ys, y0 + 1));
  const X = (v) => pad + ((v - x0) / (x1 - x0)) * (w - pad - 8);
  const Y = (v) => h - pad - ((v - y0) / (y1 - y0)) * (h - pad - 16);
  g.fillText(`${y1} dB`, 2, 18);
  g.fillText(`${y0} dB`, 2, h - pad);
  g.fillText(`step ${x1}`, w - 70, h - 12);
  g.strokeStyle = "#2e6cdf";
  g.lineWidth = 2;
  g.beginPath();
  pts.forEach((p, i) => (i ? g.lineTo(X(p[0]), Y(p[1])) : g.moveTo(X(p[0]), Y(p[1]))));
  g.stroke();
}

async function showResult(job) {
  const r = await fetch(`/jobs/${job}/metrics`);
  if (!r.ok) return;
  const m = await r.json();
  $("result").hidden = false;
  $("status").textContent = m.psnr == null
    ? `succeeded — the file keeps the image exactly (${fmtBytes(m.bytes)})`
    : `succeeded — final PSNR ${m.psnr.toFixed(2)} dB, the file ${fmtBytes(m.bytes)}`;
  $("verdict").textContent = verdict(m);
  $("m-psnr").textContent = m.psnr == null ? "exact (∞)" : m.psnr.toFixed(2);
  $("m-ssim").textContent = m.ssim.toFixed(4);
  $("m-bytes").textContent = m.bytes.toLocaleString("en");
  $("m-bpp").textContent = m.bpp.toFixed(3);
  const upscaler = m.storage === "upscale";
  const none = "—";  // the verdict sentence says why (none that small, or an upscaler)
  $("m-jpeg").textContent = m.jpeg_psnr_same_bytes == null ? none : m.jpeg_psnr_same_bytes.toFixed(2);
  $("m-webp").textContent = m.webp_psnr_same_bytes == null ? none : m.webp_psnr_same_bytes.toFixed(2);
  $("m-avif").textContent = m.avif_psnr_same_bytes == null ? none : m.avif_psnr_same_bytes.toFixed(2);
  $("m-avif-bytes").textContent = m.avif_bytes == null ? "" : m.avif_bytes.toLocaleString("en");
  $("upscale-note").hidden = !upscaler;
  $("classic-pair").style.display = upscaler ? "none" : "";
  $("m-jpeg-bytes").textContent = m.jpeg_bytes == null ? "" : m.jpeg_bytes.toLocaleString("en");
  $("m-webp-bytes").textContent = m.webp_bytes == null ? "" : m.webp_bytes.toLocaleString("en");
  $("m-ratio").textContent = `${m.compression_ratio_raw.toFixed(1)}×`;
  $("m-ratio-input").textContent = `${m.compression_ratio_input.toFixed(1)}×`;
  $("orig").src = `/jobs/${job}/original`;
  $("recon").src = `/render?job=${job}&format=png`;
  $("jpeg-img").src = m.jpeg_quality == null ? "" : `/jobs/${job}/classic?format=jpeg`;
  $("webp-img").src = m.webp_quality == null ? "" : `/jobs/${job}/classic?format=webp`;
  $("avif-img").src = m.avif_quality == null ? "" : `/jobs/${job}/classic?format=avif`;
  $("dl-model").href = `/jobs/${job}/model`;
  $("dl-model").setAttribute("download", `${job}.inr`);
  const longer = Math.max(m.width, m.height);
  $("zoom").value = String(Math.min(2 * longer, Number($("zoom").max)));
  zoom();
}

function verdict(m) {
  if (m.storage === "upscale") {
    return "This job keeps the image exactly and enlarges it (an upscaler): there is no size to compare.";
  }
  const parts = [];
  const rivals = [["JPEG", m.jpeg_psnr_same_bytes], ["WebP", m.webp_psnr_same_bytes]];
  if ("avif_psnr_same_bytes" in m) rivals.push(["AVIF", m.avif_psnr_same_bytes]);  // newer jobs
  for (const [name, p] of rivals) {
    if (p == null) {
      parts.push(`${name} cannot make a file this small`);
      continue;
    }
    const d = p - m.psnr;
    parts.push(Math.abs(d) < 0.05 ? `${name} is as good as mhinr`
      : `${name} is ${Math.abs(d).toFixed(1)} dB ${d > 0 ? "better" : "worse"} than mhinr`);
  }
  return `At the same size (${fmtBytes(m.bytes)}): ${parts.join("; ")}.`;
}

async function cancelJob() {
  if (!state.job) return;
  $("cancel").disabled = true;
  const r = await fetch(`/jobs/${state.job}/cancel`, { method: "POST", headers: authHeaders() });
  if (!r.ok) {
    const body = await r.json().catch(() => ({ detail: `the server answered ${r.status}` }));
    showError(`Could not cancel (${r.status}): ${body.detail}`);
    $("cancel").disabled = false;
  }  // the event stream's status event shows the end
}

const TARGETS = {
  "": ["", "what the file must reach: a quality, or a size it may not exceed"],
  target_psnr: ["e.g. 32", "the file is made as small as this quality allows"],
  max_bytes: ["e.g. 20", "the best quality whose file is at most this many kilobytes"],
  bpp: ["e.g. 0.5", "the best quality at most this many bits per pixel (24 = raw colour)"],
};
const PRESETS = {
  fast: "fast: the cosine codec alone, nothing trained: a few seconds",
  compact: "compact: the cosine codec, then a small ReLU network trained on the decoded image (about a minute on a CPU), kept where it makes the file smaller",
  max: "max: compact trying more restoration filters and training longer (minutes)",
  paper: "paper: the paper's network, weights stored as they are (a large file)",
  upscale: "upscale: keeps the image exactly and learns to enlarge it (about a minute)",
};

function zoom() {
  if (!state.job) return;
  const size = Number($("zoom").value);
  $("zoom-value").textContent = String(size);
  const inr = $("zoom-inr");
  inr.dataset.loading = "1";
  inr.onload = () => { inr.dataset.loading = ""; inr.dataset.size = String(size); };
  inr.src = `/render?job=${state.job}&size=${size}&format=png`;
  $("zoom-lanczos").src = `/jobs/${state.job}/original?size=${size}`;
  $("dl-render").href = inr.src;
  $("dl-render").setAttribute("download", `${state.job}-${size}.png`);
}

function syncScroll(a, b) {
  a.addEventListener("scroll", () => { b.scrollTop = a.scrollTop; b.scrollLeft = a.scrollLeft; });
}

function init() {
  $("apikey").value = localStorage.getItem("mhinr.key") || "";
  $("apikey").addEventListener("change", () => localStorage.setItem("mhinr.key", $("apikey").value));
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
  $("options").addEventListener("submit", submit);
  $("split-slider").addEventListener("input", (e) => {
    $("recon-clip").style.clipPath = `inset(0 0 0 ${e.target.value}%)`;
    $("split-line").style.left = `${e.target.value}%`;
  });
  $("cancel").addEventListener("click", cancelJob);
  $("target-kind").addEventListener("change", () => {
    const kind = $("target-kind").value;
    $("target").disabled = !kind;
    if (!kind) $("target").value = "";
    $("target").placeholder = TARGETS[kind][0];
    $("target-note").textContent = TARGETS[kind][1];
  });
  $("preset").addEventListener("change", () => { $("preset-note").textContent = PRESETS[$("preset").value]; });
  window.addEventListener("hashchange", () => {
    const h = location.hash.match(/job=([A-Za-z0-9_-]{22})/);
    if (h && h[1] !== state.job) watch(h[1]);
  });
  $("zoom").addEventListener("input", () => { $("zoom-value").textContent = $("zoom").value; });
  $("zoom").addEventListener("change", zoom);
  syncScroll($("crop-inr"), $("crop-lanczos"));
  syncScroll($("crop-lanczos"), $("crop-inr"));
  loadLimits();
  renderRecent();
  drawChart();
  const m = location.hash.match(/job=([A-Za-z0-9_-]{22})/);
  if (m) watch(m[1]);
}

init();
