// mhinr's web page: plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  file: null, job: null, name: null, events: null, history: [], limits: null, presets: {},
  phase: null, chartPhase: null, previews: 0, coded: [],
};

// what a progress report's step and PSNR are, by phase (the API's ProgressOut.phase)
const PHASES = {
  training: { doing: "training the network", chart: "PSNR of the network on your image while it trains, before its weights are rounded for the file", preview: "the network's current reconstruction" },
  stage: { doing: "training the ReLU stage", chart: "PSNR of the decoded image through the ReLU stage while it trains (whole image), before its 515 weights are rounded to 4 bits for the file (its last tenth of steps trains through the rounded weights, where this curve can dip)", preview: "the decoded image through the stage, as it trains" },
  upscaler: { doing: "training the upscaler", chart: "PSNR of the upscaler's enlargements of your image's own smaller copies (random training crops): how well it learns to enlarge, not a measure of the file", preview: "its current ×2 enlargement of the image's centre" },
  coding: { doing: "coding", chart: "", preview: "the file just coded, decoded" },
};
// how a render was made (the X-Mhinr-Render header of GET /render)
const RENDERS = {
  "decode": "mhinr: the file decoded at its own size",
  "lanczos-of-decode": "mhinr: the file decoded at its own size, then resized with Lanczos (a codec file holds no finer detail)",
  "network": "mhinr: the network evaluated at this size",
  "upscaler": "mhinr: enlarged by the upscaler network (trained once on other photos)",
  "lanczos-of-image": "mhinr: the image the file holds, reduced with Lanczos",
};

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
  $("zoom").max = $("zoom-size").max = String(l.max_render_side);
}

async function loadPresets() {
  const r = await fetch("/presets");
  const p = await r.json();
  state.presets = p.presets;
  // each field's meaning and range from the one options spec (worker/options.py)
  state.options = p.options || {};
  for (const id of ["preset", "steps", "heads", "quantization"]) {
    const spec = state.options[id];
    if (spec && spec.description) $(id).title = spec.description;
  }
  if (state.options.heads && state.options.heads.pattern) {
    $("heads").pattern = state.options.heads.pattern.replace(/^\^|\$$/g, "");
  }
  const select = $("preset");
  select.replaceChildren();
  for (const [name, info] of Object.entries(p.presets)) {
    const o = document.createElement("option");
    o.value = name;
    o.textContent = `${name} — ${info.time}`;
    o.selected = name === p.default;
    select.append(o);
  }
  presetChanged();
}

function presetChanged() {
  const info = state.presets[$("preset").value];
  if (!info) return;
  $("preset-note").textContent =
    `${info.summary}. Trains: ${info.trains || "nothing"}. Takes ${info.time} on 2 CPU cores.`;
  // only the fields this preset uses (GET /presets: "takes")
  for (const [field, id] of [["steps", "steps"], ["heads", "heads"], ["quantization", "quantization"]]) {
    const used = info.takes.includes(field);
    $(`${field}-field`).hidden = !used;
    if (!used) $(id).value = "";
  }
  if (info.trains) $("steps-note").textContent = `training steps of ${info.trains.split(":")[0]} (empty: the preset's default)`;
  const targets = info.takes.includes("max_bytes");
  $("target-kind").disabled = !targets;
  if (!targets) { $("target-kind").value = ""; $("target-kind").dispatchEvent(new Event("change")); }
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
    if (el.value !== "" && !el.closest("[hidden]")) form.append(el.name, el.value);
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
  state.name = null;
  state.history = [];
  state.phase = null;
  state.previews = 0;
  state.cancelling = false;
  state.coded = [];
  if (location.hash !== `#job=${job}`) location.hash = `job=${job}`;
  if (state.events) state.events.close();
  $("watch").hidden = false;
  $("watch").classList.remove("failed", "cancelled");
  $("result").hidden = true;
  $("status").textContent = "queued";
  $("cancel").hidden = false;
  $("cancel").disabled = false;
  $("progress").value = 0;
  $("coding").hidden = true;
  $("chart-figure").hidden = true;
  $("preview-figure").hidden = true;  // until the first preview exists
  $("preview").removeAttribute("src");
  drawChart();
  const es = (state.events = new EventSource(`/jobs/${job}/events`));
  es.addEventListener("progress", (e) => progress(job, JSON.parse(e.data)));
  es.addEventListener("status", (e) => {
    const s = JSON.parse(e.data);
    es.close();
    $("status").textContent = s.status + (s.error ? `: ${s.error}` : "");
    $("cancel").hidden = true;
    if (s.status === "succeeded") {
      $("progress").value = $("progress").max;
      showResult(job);
    } else {  // failed or cancelled: not a full bar
      $("progress").value = 0;
      $("watch").classList.add(s.status === "failed" ? "failed" : "cancelled");
      if (s.status === "cancelled") $("status").textContent = "cancelled — nothing was kept";
      if (s.status === "failed") $("status").textContent = `failed: ${s.error || "no reason given"}`;
    }
  });
  es.onerror = () => { /* the browser reconnects by itself; the status event ends it */ };
  fetch(`/jobs/${job}`).then((r) => r.json()).then((j) => {
    state.name = (j.input && j.input.name) || null;
    if (j.metrics && j.metrics.psnr_history && j.metrics.psnr_history.length) {
      state.history = j.metrics.psnr_history;
      showChart(j.progress && j.progress.phase !== "coding" ? j.progress.phase : "training");
    }
  });
}

function progress(job, p) {
  const phase = PHASES[p.phase] ? p.phase : "training";
  $("progress").max = Math.max(p.total, 1);
  $("progress").value = p.step;
  const took = `${p.elapsed_s.toFixed(1)} s`;
  if (phase === "coding") {
    state.coded.push(p.detail);
    const sizes = [...new Set(state.coded.filter(Boolean))];
    $("status").textContent = `running — coding: file ${p.step} of ${p.total}${p.detail ? ` (${p.detail})` : ""}, PSNR ${p.psnr.toFixed(2)} dB, ${took}`;
    $("coding").hidden = false;
    $("coding").textContent = `Coding: ${state.coded.length} file${state.coded.length > 1 ? "s" : ""} coded` +
      (sizes.length ? ` (${sizes.map((d) => d.replace("cell ", "")).join(", ")} cells)` : "") + ".";
  } else {
    $("status").textContent = `running — ${PHASES[phase].doing}: step ${p.step} of about ${p.total}, PSNR ${p.psnr.toFixed(2)} dB, ${took}`;
    if (state.phase !== phase) state.history = [];
    state.history.push([p.step, p.psnr]);
    showChart(phase);
  }
  state.phase = phase;
  // a new preview exists: only then is it fetched (not once a cancel, which deletes it, is asked)
  if (p.previews > state.previews && !state.cancelling) {
    state.previews = p.previews;
    const img = new Image();
    img.onload = () => {
      $("preview").src = img.src;
      $("preview-caption").textContent = PHASES[phase].preview;
      $("preview-figure").hidden = false;
    };
    img.src = `/jobs/${job}/preview?n=${p.previews}`;
  }
}

function showChart(phase) {
  $("chart-figure").hidden = false;
  $("chart-caption").textContent = PHASES[phase].chart;
  $("chart").setAttribute("aria-label", PHASES[phase].chart);
  state.chartPhase = phase;
  drawChart();
}

function drawChart() {
  const c = $("chart"), g = c.getContext("2d");
  const w = c.width, h = c.height, pad = 36;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#9aa4ae";
  g.strokeRect(pad, 8, w - pad - 8, h - pad - 8);
  const pts = state.history.filter((p) => isFinite(p[1]));
  g.fillStyle = "#4a535c";
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
  g.fillText(`step ${x0}`, pad, h - 12);
  g.fillText(`step ${x1}`, w - 80, h - 12);
  g.strokeStyle = "#2e6cdf";
  g.lineWidth = 2;
  g.beginPath();
  pts.forEach((p, i) => (i ? g.lineTo(X(p[0]), Y(p[1])) : g.moveTo(X(p[0]), Y(p[1]))));
  g.stroke();
  if (pts.length === 1) {  // one report so far: a dot
    g.beginPath();
    g.arc(X(pts[0][0]), Y(pts[0][1]), 3, 0, 2 * Math.PI);
    g.fillStyle = "#2e6cdf";
    g.fill();
  }
}

const num = (v, d) => (v == null ? "—" : v.toFixed(d));
const fmtInt = (v) => (v == null ? "" : v.toLocaleString("en"));

async function showResult(job) {
  const r = await fetch(`/jobs/${job}/metrics`);
  if (!r.ok) return;
  const m = await r.json();
  const upscaler = m.storage === "upscale";
  $("result").hidden = false;
  $("preview").src = `/render?job=${job}&format=png`;  // the finished file
  $("preview-caption").textContent = "the finished file, decoded";
  $("preview-figure").hidden = false;
  if (upscaler) {
    $("status").textContent = `succeeded — an upscaler of ${fmtInt(m.params)} weights; the file ${fmtBytes(m.bytes)}`;
  } else {
    $("status").textContent = `succeeded — final PSNR ${m.psnr.toFixed(2)} dB, the file ${fmtBytes(m.bytes)}` +
      (m.met === false ? " (target not met)" : "");
  }
  if (state.history.length) {  // connect the chart to the file's own number
    const phase = state.chartPhase || "training";
    const last = state.history[state.history.length - 1][1];
    let end = ". Its held-out check is below.";  // an upscaler: the check, not the file's PSNR
    if (!upscaler && !(m.stage && m.stage.without)) {
      end = `. Last point ${last.toFixed(2)} dB; the file, its weights rounded and coded, measures ${m.psnr.toFixed(2)} dB.`;
    } else if (!upscaler) {  // the stage's file was coded again around it
      const w = m.stage.without;
      end = `. Last point ${last.toFixed(2)} dB on the decode it trained on; the file ` +
        (m.stage.kept
          ? `keeps the stage with its coefficients coded again around it: ${m.psnr.toFixed(2)} dB in ${fmtInt(m.bytes)} bytes, where without the stage it was ${w.psnr.toFixed(2)} dB in ${fmtInt(w.bytes)} bytes.`
          : `does without the stage, which did not pay for its bytes: ${m.psnr.toFixed(2)} dB in ${fmtInt(m.bytes)} bytes.`);
    }
    $("chart-caption").textContent = PHASES[phase].chart + end;
  }
  if (state.coded.length && m.cell) {  // the coding sweep: which of the files was kept
    $("coding").hidden = false;
    $("coding").textContent = $("coding").textContent.replace(/ Kept.*$/, "") + ` Kept: ${m.cell[0]} px cells.`;
  }
  const outcome = $("outcome");
  outcome.className = m.met === false ? "not-met" : m.met ? "met" : "";
  outcome.textContent = m.target_outcome
    ? `Target ${m.target_outcome}.`
    : upscaler ? "" : "No target: the preset's default quality.";
  for (const id of ["codec-numbers", "verdict", "codec-explain", "ratio-line", "classic-pair"]) $(id).hidden = upscaler;
  $("upscale-numbers").hidden = !upscaler;
  $("upscale-note").hidden = !upscaler;
  const exact = upscaler && (m.upscale || {}).image !== "cosine codec";
  $("split-note").textContent = exact
    ? "left of the line: original · right: the file (it holds the image exactly)"
    : "left of the line: original · right: the decoded file";
  if (upscaler) {
    showUpscaler(m);
  } else {
    $("verdict").textContent = verdict(m);
    $("m-psnr").textContent = num(m.psnr, 2);
    $("m-ssim").textContent = m.ssim.toFixed(4);
    $("m-bytes").textContent = fmtInt(m.bytes);
    $("m-bpp").textContent = m.bpp.toFixed(3);
    for (const c of ["jpeg", "webp", "avif", "jxl"]) {
      $(`m-${c}`).textContent = num(m[`${c}_psnr_same_bytes`], 2);  // "—": none that small
      $(`m-${c}-bytes`).textContent = fmtInt(m[`${c}_bytes`]);
      const img = $(`${c}-img`);  // browsers show no JPEG XL: its numbers only
      if (!img) continue;
      if (m[`${c}_quality`] == null) img.removeAttribute("src");
      else img.src = `/jobs/${job}/classic?format=${c}`;
    }
    $("jxl-row").hidden = m.jxl_psnr_same_bytes == null;  // a server without JPEG XL
    $("m-ratio").textContent = `${m.compression_ratio_raw.toFixed(1)}×`;
    $("m-ratio-input").textContent = `${m.compression_ratio_input.toFixed(1)}×`;
  }
  $("orig").src = `/jobs/${job}/original`;
  $("recon").src = `/render?job=${job}&format=png`;
  $("dl-model").href = `/jobs/${job}/model`;
  $("dl-model").setAttribute("download", `${state.name || job}.inr`);
  const longer = Math.max(m.width, m.height);
  setZoom(Math.min(2 * longer, Number($("zoom").max)));
  zoom();
}

// how much of the network's enlargement a render keeps at ×2, ×3, ×4 (the rest Lanczos's)
function blendText(blend) {
  if (!Array.isArray(blend) || blend.every((a) => a >= 1)) return "";
  const parts = blend.map((a, i) => `${Math.round(a * 100)} % at ×${i + 2}`);
  return `; so enlargements keep ${parts.join(", ")} of the network's, the rest Lanczos's`;
}

function showUpscaler(m) {
  const u = m.upscale || {};
  const kept = u.image === "cosine codec"
    ? `your image coded by the cosine codec for the target (${fmtBytes(u.image_bytes)}, ${m.psnr.toFixed(2)} dB)`
    : u.image_bytes == null ? "your image, kept exactly"
    : `your image, kept exactly (${fmtBytes(u.image_bytes)}, WebP lossless)`;
  $("u-file").textContent = `${fmtBytes(m.bytes)}: ${kept}, and the network` +
    (u.network_bytes == null ? "" : ` (${fmtBytes(u.network_bytes)})`);
  $("u-network").textContent = `${fmtInt(m.params)} weights (${m.body})` +
    (u.weight_levels ? `, stored as integers from −${u.weight_levels} to ${u.weight_levels} with one scale a channel` : "");
  $("u-training").textContent = u.prior
    ? `none on your image: the network is mhinr's upscaler (${u.prior}), trained once on other photos; the file names it instead of holding its weights`
    : u.steps == null ? `${m.train_steps} steps`
    : `${u.steps.toLocaleString("en")} steps in ${u.seconds.toFixed(0)} s on your image`;
  if (u.held_out_psnr == null || u.held_out_lanczos_psnr == null) {
    $("u-check").textContent = "the image is too small to hold a copy out";
  } else {
    const d = u.held_out_psnr - u.held_out_lanczos_psnr;
    $("u-check").textContent =
      `enlarging the image's half-size copy ×2 and comparing with the image: the network ${u.held_out_psnr.toFixed(2)} dB, ` +
      `Lanczos ${u.held_out_lanczos_psnr.toFixed(2)} dB (${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(2)} dB)` +
      blendText(u.blend);
  }
}

function verdict(m) {
  const parts = [];
  for (const [name, key] of [["JPEG", "jpeg"], ["WebP", "webp"], ["AVIF", "avif"], ["JPEG XL", "jxl"]]) {
    if (!(`${key}_psnr_same_bytes` in m)) continue;  // older jobs have no AVIF or JPEG XL
    if (key === "jxl" && m.jxl_psnr_same_bytes == null) continue;  // none, or no encoder
    const p = m[`${key}_psnr_same_bytes`], b = m[`${key}_bytes`];
    if (p == null) {
      parts.push(`${name} cannot make a file this small`);
      continue;
    }
    const d = p - m.psnr;
    const fewer = 100 * (m.bytes - b) / m.bytes;  // its file is the largest not over ours
    const bytes = fewer >= 0.05 ? `with ${fewer.toFixed(1)} % fewer bytes (${fmtInt(b)})` : "with the same bytes";
    parts.push(Math.abs(d) < 0.05 ? `${name} is as good as mhinr ${bytes}`
      : `${name} is ${Math.abs(d).toFixed(1)} dB ${d > 0 ? "better" : "worse"} than mhinr, ${bytes}`);
  }
  return `Each codec at its largest file not over mhinr's ${fmtInt(m.bytes)} bytes: ${parts.join("; ")}.`;
}

async function cancelJob() {
  if (!state.job) return;
  $("cancel").disabled = true;
  state.cancelling = true;
  const r = await fetch(`/jobs/${state.job}/cancel`, { method: "POST", headers: authHeaders() });
  if (!r.ok) {
    const body = await r.json().catch(() => ({ detail: `the server answered ${r.status}` }));
    showError(`Could not cancel (${r.status}): ${body.detail}`);
    $("cancel").disabled = false;
    state.cancelling = false;
  }  // the event stream's status event shows the end
}

const TARGETS = {
  "": ["", "what the file must reach: a quality, or a size it may not exceed"],
  target_psnr: ["e.g. 32", "the file is made as small as this quality allows"],
  max_bytes: ["e.g. 20", "the best quality whose file is at most this many kilobytes"],
  bpp: ["e.g. 0.5", "the best quality at most this many bits per pixel (24 = raw colour)"],
};
function setZoom(size) {
  const max = Number($("zoom").max), min = Number($("zoom").min);
  const v = Math.max(min, Math.min(max, Math.round(Number(size) || min)));
  $("zoom").value = $("zoom-size").value = String(v);
  return v;
}

async function zoom() {
  if (!state.job) return;
  const size = setZoom($("zoom-size").value);
  const job = state.job, url = `/render?job=${job}&size=${size}&format=png`;
  const inr = $("zoom-inr");
  inr.dataset.loading = "1";
  $("zoom-lanczos").src = `/jobs/${job}/original?size=${size}`;
  $("dl-render").href = url;
  $("dl-render").setAttribute("download", `${state.name || job}-${size}.png`);
  const r = await fetch(url, { headers: authHeaders() });
  if (!r.ok || state.job !== job || Number($("zoom-size").value) !== size) return;
  const kind = r.headers.get("X-Mhinr-Render") || "";
  const blob = URL.createObjectURL(await r.blob());
  inr.onload = () => {
    inr.dataset.loading = "";
    inr.dataset.size = String(size);
    inr.dataset.render = kind;
  };
  if (inr.src.startsWith("blob:")) URL.revokeObjectURL(inr.src);
  inr.src = blob;
  $("zoom-caption").textContent = RENDERS[kind] || "mhinr's render";
}

function syncScroll(a, b) {
  a.addEventListener("scroll", () => { b.scrollTop = a.scrollTop; b.scrollLeft = a.scrollLeft; });
}

function init() {
  $("apikey").value = localStorage.getItem("mhinr.key") || "";
  $("apikey").addEventListener("change", () => localStorage.setItem("mhinr.key", $("apikey").value));
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  $("pick").addEventListener("click", () => $("file").click());  // a button: Tab, Enter, Space
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
    const spec = (state.options || {})[kind] || {};
    const range = (spec.anyOf || [spec]).find((b) => b.type === "number" || b.type === "integer") || {};
    if (range.maximum !== undefined) $("target").max = String(range.maximum); else $("target").removeAttribute("max");
    $("target").title = spec.description || "";
  });
  $("preset").addEventListener("change", presetChanged);
  window.addEventListener("hashchange", () => {
    const h = location.hash.match(/job=([A-Za-z0-9_-]{22})/);
    if (h && h[1] !== state.job) watch(h[1]);
  });
  $("zoom").addEventListener("input", () => { $("zoom-size").value = $("zoom").value; });
  $("zoom").addEventListener("change", () => { $("zoom-size").value = $("zoom").value; zoom(); });
  $("zoom-size").addEventListener("change", () => { if ($("zoom-size").value !== "") zoom(); });
  $("zoom-size").addEventListener("keydown", (e) => { if (e.key === "Enter" && $("zoom-size").value !== "") zoom(); });
  syncScroll($("crop-inr"), $("crop-lanczos"));
  syncScroll($("crop-lanczos"), $("crop-inr"));
  loadLimits();
  loadPresets();
  renderRecent();
  drawChart();
  const m = location.hash.match(/job=([A-Za-z0-9_-]{22})/);
  if (m) watch(m[1]);
}

init();
