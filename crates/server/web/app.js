/* percept page: one question (typed or spoken, with an optional image) per send,
 * answered by the server's OpenAI-style streaming chat endpoint.
 * No build step and no network beyond this server: plain DOM and fetch. */
"use strict";

const $ = (id) => document.getElementById(id);
const SPEECH_RATE = 16000;

const page = {
  image: null, // { dataUrl, name }
  recording: null, // Promise of { rec, done, started } while the button is held
  abort: null, // AbortController of the answer in flight
};

/* ---------- state, status and errors ---------- */

// Tests and scripts wait on body[data-state]: idle, recording, encoding, sending, streaming, done, error.
function setState(state, message) {
  document.body.dataset.state = state;
  if (message !== undefined) $("status").textContent = message;
}

function showError(message) {
  $("error").textContent = message.charAt(0).toUpperCase() + message.slice(1);
  $("error").hidden = false;
  setState("error", "Failed.");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function busy(on) {
  $("send").disabled = on;
  $("record").disabled = on;
  $("stop").hidden = !on;
}

/* ---------- settings ---------- */

const SETTINGS = ["model", "max-tokens", "api-key"];

function restoreSettings() {
  for (const id of SETTINGS) {
    const v = localStorage.getItem("percept." + id);
    if (v !== null && id !== "model") $(id).value = v;
  }
  for (const id of SETTINGS) {
    $(id).addEventListener("change", () => localStorage.setItem("percept." + id, $(id).value));
  }
  // A key typed after a 401 should take effect at once: list the models with it.
  $("api-key").addEventListener("change", loadModels);
}

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

async function loadModels() {
  const select = $("model");
  try {
    const resp = await fetch("/v1/models", { headers: authHeaders() });
    if (!resp.ok) {
    const err = new Error(await errorText(resp));
    err.status = resp.status;
    throw err;
  }
    const all = (await resp.json()).data || [];
    // Chat needs the LLM's id; the speech and vision models are listed too.
    const chatModels = all.filter((m) =>
      m.percept?.kind ? m.percept.kind === "llm" : !/whisper|clip/i.test(m.id));
    const list = chatModels.length ? chatModels : all;
    select.replaceChildren(...list.map((m) => new Option(m.id, m.id)));
    const saved = localStorage.getItem("percept.model");
    if (saved && list.some((m) => m.id === saved)) select.value = saved;
  } catch (e) {
    // The page still works: the server picks its default model when none is named.
    select.replaceChildren(new Option("(server default)", ""));
    $("status").textContent = "Could not list models: " + e.message;
  }
}

/* ---------- image: drop, paste or pick ---------- */

function setImage(file) {
  clearError();
  if (!file.type.startsWith("image/")) {
    showError(`${file.name}: not an image (${file.type || "unknown type"})`);
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    page.image = { dataUrl: reader.result, name: file.name };
    $("preview").src = reader.result;
    $("preview").alt = file.name;
    $("preview").hidden = false;
    $("clear-image").hidden = false;
    $("drop-hint").hidden = true;
  };
  reader.onerror = () => showError(`${file.name}: could not be read`);
  reader.readAsDataURL(file);
}

function clearImage() {
  page.image = null;
  $("preview").hidden = true;
  $("preview").removeAttribute("src");
  $("clear-image").hidden = true;
  $("drop-hint").hidden = false;
  $("image-input").value = "";
}

function wireImage() {
  const drop = $("drop");
  const pick = () => $("image-input").click();
  drop.addEventListener("click", (e) => {
    if (e.target.id !== "clear-image") pick();
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); }
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) setImage(file);
  });
  $("image-input").addEventListener("change", (e) => {
    if (e.target.files[0]) setImage(e.target.files[0]);
  });
  $("clear-image").addEventListener("click", clearImage);
  document.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) setImage(file);
  });
}

/* ---------- microphone: hold to talk ---------- */

async function startRecording() {
  if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
    throw new Error("this browser cannot record audio here (the page needs http://localhost or https)");
  }
  // Whisper copes with room noise better than with the browser's voice processing artefacts.
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const rec = new MediaRecorder(stream);
  const chunks = [];
  rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  const done = new Promise((resolve, reject) => {
    rec.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      resolve(new Blob(chunks, { type: rec.mimeType }));
    };
    rec.onerror = (e) => reject(e.error || new Error("recording failed"));
  });
  rec.start();
  setState("recording", "Recording… release to send.");
  return { rec, done, started: performance.now() };
}

function pressRecord() {
  if (page.recording || page.abort) return;
  clearError();
  page.recording = startRecording();
  page.recording.catch((e) => {
    page.recording = null;
    showError("Microphone: " + e.message);
  });
}

// Resolves to the recorded blob, or null when nothing usable was recorded.
async function releaseRecord() {
  const pending = page.recording;
  if (!pending) return null;
  page.recording = null;
  let r;
  try {
    r = await pending;
  } catch {
    return null; // already reported by pressRecord
  }
  r.rec.stop();
  const blob = await r.done;
  if (performance.now() - r.started < 300 || blob.size === 0) {
    setState("idle", "Hold the button while you speak.");
    return null;
  }
  return blob;
}

/* ---------- the recording's format; WAV encoding as the fallback ---------- */

// The chat API's input_audio format for a MediaRecorder MIME type, or null when unknown.
function recordedFormat(mime) {
  const m = (mime || "").toLowerCase();
  if (m.startsWith("audio/webm") || m.startsWith("video/webm")) return "webm";
  if (m.startsWith("audio/ogg")) return "ogg";
  if (m.startsWith("audio/mp4") || m.startsWith("video/mp4")) return "mp4";
  if (m.startsWith("audio/wav") || m.startsWith("audio/wave")) return "wav";
  return null;
}

async function toWav16k(blob) {
  const bytes = await blob.arrayBuffer();
  // decodeAudioData resamples to its context's rate; rendering into one channel downmixes.
  const decoded = await new OfflineAudioContext(1, 1, SPEECH_RATE).decodeAudioData(bytes);
  const frames = Math.max(1, Math.ceil(decoded.duration * SPEECH_RATE));
  const ctx = new OfflineAudioContext(1, frames, SPEECH_RATE);
  const src = ctx.createBufferSource();
  src.buffer = decoded;
  src.connect(ctx.destination);
  src.start();
  const mono = await ctx.startRendering();
  return encodeWav(mono.getChannelData(0), SPEECH_RATE);
}

function encodeWav(samples, rate) {
  const buf = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buf);
  const ascii = (at, s) => [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
  ascii(0, "RIFF");
  v.setUint32(4, 36 + samples.length * 2, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  v.setUint32(16, 16, true); // fmt chunk size
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true); // bytes per second
  v.setUint16(32, 2, true); // block align
  v.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([buf], { type: "audio/wav" });
}

function base64Of(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(new Error("could not read the recording"));
    reader.readAsDataURL(blob);
  });
}

/* ---------- results ---------- */

function resetResults() {
  $("answer").textContent = "";
  $("transcript").textContent = "—";
  $("transcript").classList.add("muted");
  $("tags").textContent = "—";
  $("tags").classList.add("muted");
}

function describeExtra(extra) {
  if (extra === null || extra === undefined) return "";
  if (typeof extra !== "object") return String(extra);
  return Object.entries(extra)
    .filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(", ");
}

function renderPercept(p) {
  if (typeof p.transcript === "string") {
    $("transcript").textContent = p.transcript.trim() || "(nothing heard)";
    $("transcript").classList.remove("muted");
  }
  const images = Array.isArray(p.images) ? p.images : [];
  if (!images.length) return;
  const box = $("tags");
  box.replaceChildren();
  box.classList.remove("muted");
  for (const img of images) {
    const card = document.createElement("div");
    card.className = "image-result";
    const f = img.facts || {};
    const facts = document.createElement("p");
    facts.className = "facts";
    const size = f.width && f.height ? `${f.width}×${f.height}` : "";
    facts.textContent = [img.source, size, f.format, describeExtra(f.extra)].filter(Boolean).join(" · ");
    card.append(facts);
    const list = document.createElement("ul");
    for (const t of img.tags || []) {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = t.label;
      const meter = document.createElement("meter");
      meter.min = 0;
      meter.max = 1;
      meter.value = Number(t.score) || 0;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = (Number(t.score) || 0).toFixed(2);
      li.append(label, meter, score);
      list.append(li);
    }
    if (!list.children.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "no tags (facts only)";
      list.append(li);
    }
    card.append(list);
    box.append(card);
  }
}

/* ---------- asking ---------- */

async function errorText(resp) {
  let detail = "";
  try {
    const body = await resp.text();
    try {
      detail = JSON.parse(body).error?.message || body;
    } catch {
      detail = body;
    }
  } catch {
    /* no body */
  }
  if (resp.status === 429) {
    const wait = resp.headers.get("Retry-After");
    return `the server is busy (HTTP 429)${wait ? `, try again in ${wait} s` : ", try again in a moment"}${detail ? ": " + detail : ""}`;
  }
  if (resp.status === 401) $("settings").open = true;
  if (resp.status === 401) return "the server wants an API key (Settings): " + (detail || "HTTP 401");
  return `HTTP ${resp.status}${detail ? ": " + detail : ""}`;
}

async function send(audioBlob) {
  if (page.abort) return;
  clearError();
  const text = $("question").value.trim();
  if (!text && !page.image && !audioBlob) {
    showError("Type a question, hold the microphone button to speak one, or add an image.");
    return;
  }
  busy(true);
  const controller = new AbortController();
  page.abort = controller;
  try {
    const content = [];
    if (text) content.push({ type: "text", text });
    if (page.image) content.push({ type: "image_url", image_url: { url: page.image.dataUrl } });
    // The browser's own recording (WebM/Opus, Ogg or MP4) goes as it is; WAV re-encoding is
    // only the fallback for a format the server cannot read.
    const format = audioBlob ? recordedFormat(audioBlob.type) : null;
    const audioPart = async (wav) => {
      const blob = wav ? await toWav16k(audioBlob) : audioBlob;
      const data = await base64Of(blob);
      document.body.dataset.audioFormat = wav ? "wav" : format;
      return { type: "input_audio", input_audio: { data, format: wav ? "wav" : format } };
    };
    if (audioBlob) {
      setState("encoding", "Preparing the recording…");
      content.push(await audioPart(!format));
    }
    const body = { messages: [{ role: "user", content }], stream: true };
    if ($("model").value) body.model = $("model").value;
    const maxTokens = parseInt($("max-tokens").value, 10);
    if (maxTokens > 0) body.max_tokens = maxTokens;
    resetResults();
    try {
      await stream(body, controller.signal);
    } catch (e) {
      if (!(format && e.status === 400 && /audio/.test(e.message))) throw e;
      setState("encoding", "The server cannot read this recording; sending it as WAV…");
      content[content.length - 1] = await audioPart(true);
      resetResults();
      await stream(body, controller.signal);
    }
  } catch (e) {
    if (e.name === "AbortError") setState("idle", "Stopped.");
    else showError(e.message || String(e));
  } finally {
    page.abort = null;
    busy(false);
  }
}

async function stream(body, signal) {
  const t0 = performance.now();
  setState("sending", "Listening, looking and thinking…");
  const resp = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify(body),
    signal,
  });
  if (!resp.ok) {
    const err = new Error(await errorText(resp));
    err.status = resp.status;
    throw err;
  }
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let firstToken = null;
  let finish = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const data = buf.slice(0, cut).split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, ""))
        .join("\n");
      buf = buf.slice(cut + 2);
      if (!data) continue;
      if (data === "[DONE]") {
        const secs = (ms) => (ms / 1000).toFixed(1);
        const first = firstToken === null ? "" : `, first words after ${secs(firstToken - t0)} s`;
        const cutShort = finish === "length" ? " (cut at the token limit)" : "";
        setState("done", `Answered in ${secs(performance.now() - t0)} s${first}${cutShort}.`);
        return;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message || JSON.stringify(chunk.error));
      if (chunk.percept) renderPercept(chunk.percept);
      const choice = (chunk.choices || [])[0];
      if (!choice) continue;
      const piece = choice.delta?.content;
      if (piece) {
        if (firstToken === null) {
          firstToken = performance.now();
          setState("streaming", "Answering…");
        }
        $("answer").textContent += piece;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  throw new Error("the answer stopped before the end (connection closed)");
}

/* ---------- wiring ---------- */

function wireControls() {
  const rec = $("record");
  const release = async () => {
    if (!page.recording) return;
    rec.classList.remove("live");
    const blob = await releaseRecord();
    if (blob) await send(blob);
  };
  rec.addEventListener("pointerdown", (e) => {
    rec.setPointerCapture(e.pointerId);
    rec.classList.add("live");
    pressRecord();
  });
  rec.addEventListener("pointerup", release);
  rec.addEventListener("pointercancel", release);
  rec.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) {
      e.preventDefault();
      rec.classList.add("live");
      pressRecord();
    }
  });
  rec.addEventListener("keyup", (e) => {
    if (e.key === " " || e.key === "Enter") release();
  });
  rec.addEventListener("contextmenu", (e) => e.preventDefault());
  $("send").addEventListener("click", () => send(null));
  $("stop").addEventListener("click", () => page.abort?.abort());
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      send(null);
    }
  });
}

// Test hook: record for `ms` without holding the button, then send; resolves when answered.
window.perceptRecord = async (ms) => {
  pressRecord();
  await new Promise((r) => setTimeout(r, ms));
  const blob = await releaseRecord();
  if (blob) await send(blob);
  return document.body.dataset.state;
};
window.perceptSend = async () => {
  await send(null);
  return document.body.dataset.state;
};

restoreSettings();
wireImage();
wireControls();
loadModels();
const auto = parseInt(new URLSearchParams(location.search).get("autorecord") || "", 10);
if (auto > 0) window.perceptRecord(auto);
