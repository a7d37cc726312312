// The vidmatte page: every state lives on the server, in this session's folder; the page shows it,
// sends what the person does, and polls while a task runs, so a reload finds everything again.
"use strict";

const session = location.pathname.split("/").pop();
const api = `/api/s/${session}`;
const $ = (id) => document.getElementById(id);
const POLL_MS = 400;
const MAX_PLAY_RATE = 30;  // frames per second of the live preview at most
let state = null;
let pollTimer = null;
let cancelledJob = null;  // the job the person cancelled: gone, whatever a late poll says
// the live preview of the job shown: its frames are played in order at the video's rate as they come
// (MSG-VIM gives them a chunk at a time), then the finished preview video takes over
let shownJob = null;
let shownFrames = new Set();
let liveCursor = -1;
let liveTimer = null;

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

async function call(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(api + path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function upload(path, file, onProgress) {
  if (file.size > state.max_upload) {  // refused before it is sent, as the server would refuse it
    const limit = Math.floor(state.max_upload / 2 ** 20);
    return Promise.reject(new Error(
      `vidmatte: error: ${file.name}: larger than the upload limit of ${limit} MB (vidmatte app --max-upload)`));
  }
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", `${api}${path}?name=${encodeURIComponent(file.name)}`);
    request.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    request.onload = () => {
      let data = {};
      try { data = JSON.parse(request.responseText); } catch (e) { /* not JSON */ }
      request.status < 300 ? resolve(data) : reject(new Error(data.error || request.statusText));
    };
    request.onerror = () => reject(new Error(`${file.name}: the upload failed (over the size limit?)`));
    request.send(file);
  });
}

async function act(work) {
  showError("");
  try {
    apply(await work());
  } catch (error) {
    showError(error.message);
  }
}

// ------------------------------------------------------------------------------------------- view
function apply(next) {
  state = next;
  $("open-section").hidden = !!state.video;
  $("path-form").hidden = !state.allow_paths;
  $("video-name").textContent = state.video ? state.video.name : "";
  showPeople(state.people);
  showJob(state.job);
  const busy = (state.people && state.people.status === "running") || (state.job && state.job.status === "running");
  clearTimeout(pollTimer);
  if (busy) pollTimer = setTimeout(refresh, POLL_MS);
}

function showPeople(people) {
  $("people-section").hidden = !people;
  $("settings-section").hidden = !people || people.status !== "done";
  if (!people) return;
  if (people.status === "running") {
    $("people-status").textContent = "Finding the people on the first frame…";
    return;
  }
  if (people.status === "failed") {
    $("people-status").textContent = "";
    showError(people.error);
    return;
  }
  const found = people.people;
  $("people-status").textContent = found.length
    ? `${found.length} ${found.length === 1 ? "person" : "people"} on the first frame, ` +
      `${found.filter((p) => p.kept).length} kept.`
    : "Nobody was found on the first frame: AdaM starts from its own estimate, or from what you paint.";
  $("people-figure").hidden = false;
  $("clear-paint").hidden = !people.painting;
  const version = found.map((p) => `${p.id}${p.kept ? "k" : "d"}`).join("-") + `-${people.painting || 0}`;
  const source = `${api}/people.png?v=${version}`;
  if ($("people-view").dataset.source !== source) {
    $("people-view").dataset.source = source;
    $("people-view").src = source;
  }
  const list = $("people-list");
  list.replaceChildren(...found.map((person) => {
    const item = document.createElement("li");
    item.innerHTML = `<label><input type="checkbox" data-person="${person.id}" ${person.kept ? "checked" : ""}>` +
      `<span class="swatch" style="background:${person.colour}"></span> person ${person.id}</label>`;
    return item;
  }));
  const msgvim = document.querySelector("input[value=msgvim]");
  msgvim.disabled = !found.length;
  if (!found.length) document.querySelector("input[value=adam]").checked = true;
  $("use-image").disabled = !state.background;
  $("background-name").textContent = state.background || "an image";
  constrainSettings();
}

function showJob(job) {
  if (job && job.id === cancelledJob) job = null;
  $("job-section").hidden = !job && !cancelledJob;
  if (!job) {
    if (cancelledJob) {
      $("progress-text").textContent = "Cancelled: the job's files are removed.";
      $("cancel").hidden = true;
      $("live").hidden = $("preview").hidden = true;
      $("downloads").replaceChildren();
    }
    $("start").disabled = false;
    return;
  }
  if (shownJob !== job.id) {
    shownJob = job.id;
    shownFrames = new Set();
    liveCursor = -1;
    $("live").dataset.framesShown = "0";
    $("live").hidden = true;
    $("preview").removeAttribute("src");
    $("preview").hidden = true;
    clearInterval(liveTimer);
    liveTimer = null;
    if (job.status === "done") showPreviewVideo(job);  // a finished job, seen after a reload
  }
  const running = job.status === "running";
  $("start").disabled = running;
  $("cancel").hidden = !running;
  const total = job.frames_total;
  const done = job.frames_done || 0;
  $("progress").value = total ? done / total : running ? 0 : 1;
  if (running) {
    const parts = [`${job.phase}: ${done}${total ? ` / ${total}` : ""} frames`];
    if (job.fps) parts.push(`${job.fps.toFixed(1)} fps`);
    if (job.seconds_left != null && job.fps) parts.push(`${Math.ceil(job.seconds_left)} s left`);
    $("progress-text").textContent = parts.join(" · ");
  } else if (job.status === "done") {
    $("progress-text").textContent = `Done: ${done} frames at ${job.fps.toFixed(1)} fps.`;
  } else {
    $("progress-text").textContent = "Failed.";
    showError(job.error);
  }
  if (job.status === "failed") {
    clearInterval(liveTimer);
  } else if (!liveTimer && $("preview").hidden) {
    const rate = Math.min(MAX_PLAY_RATE, (state.people && state.people.frame_rate) || MAX_PLAY_RATE);
    liveTimer = setInterval(playLive, 1000 / rate);
  }
  $("downloads").replaceChildren(...(job.outputs || []).map((output, index) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `${api}/jobs/${job.id}/outputs/${index}`;
    link.download = output.filename;
    link.textContent = output.label;
    link.dataset.path = output.path;
    item.append(link, ` (${output.filename})`);
    return item;
  }));
}

function playLive() {
  const job = state && state.job;
  if (!job || job.id !== shownJob) return;
  if ($("live").dataset.frame && !$("live").complete) return;  // every frame is shown, none skipped
  if (job.live_last != null && liveCursor < job.live_last) {
    liveCursor = Math.max(liveCursor + 1, job.live_first);
    $("live").dataset.frame = String(liveCursor);
    $("live").src = `${api}/jobs/${job.id}/live/${liveCursor}.jpg`;
    $("live").hidden = false;
  } else if (job.status === "done") {
    showPreviewVideo(job);
  }
}

function showPreviewVideo(job) {
  clearInterval(liveTimer);
  if (!job.preview) return;
  $("preview").src = `${api}/jobs/${job.id}/preview.mp4`;
  $("preview").hidden = false;
  $("live").hidden = true;
  $("preview").play().catch(() => {});  // browsers may hold it until it is on screen
}

// The choices a model or format cannot take are greyed out, so the job never fails on them.
function constrainSettings() {
  const msgvim = document.querySelector("input[name=model]:checked").value === "msgvim";
  const foreground = document.querySelector("input[name=outputs][value=foreground]");
  foreground.disabled = msgvim;  // MSG-VIM predicts no foreground colour
  if (msgvim) foreground.checked = false;
  const transparent = document.querySelector("input[name=outputs][value=rgba]").checked;
  const mp4 = document.querySelector("#format option[value=mp4]");
  mp4.disabled = transparent;  // an MP4 cannot hold transparency
  if (transparent && $("format").value === "mp4") $("format").value = "webm";
}

async function refresh() {
  try {
    apply(await call("GET", "/state"));
  } catch (error) {
    showError(error.message);
    pollTimer = setTimeout(refresh, POLL_MS * 5);
  }
}

// --------------------------------------------------------------------------------------- actions
$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (!file) return;
  const progress = (fraction) => { $("upload-progress").textContent = `uploading ${Math.round(fraction * 100)}%`; };
  act(async () => {
    try {
      return await upload("/upload", file, progress);
    } finally {
      $("upload-progress").textContent = "";
      $("file").value = "";
    }
  });
});

$("path-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act(() => call("POST", "/open", { path: $("path").value }));
});

$("people-view").addEventListener("click", (event) => {
  const image = event.currentTarget;
  const x = (event.offsetX * image.naturalWidth) / image.clientWidth;
  const y = (event.offsetY * image.naturalHeight) / image.clientHeight;
  act(() => call("POST", "/click", { x, y }));
});

// Painting corrects AdaM's first-frame mask: a stroke is drawn here as the pointer moves, and sent (in the
// frame's pixels) when it ends; the server's redrawn first frame then shows it.
const HELP = {
  pick: "Click a person to keep or drop them.",
  add: "Paint what AdaM's first-frame mask misses (MSG-VIM follows the people's own masks).",
  erase: "Erase what AdaM's first-frame mask should not hold.",
};
let stroke = null;

function tool() {
  return document.querySelector("input[name=tool]:checked").value;
}

function toFrame(event) {
  const image = $("people-view");
  return [(event.offsetX * image.naturalWidth) / image.clientWidth, (event.offsetY * image.naturalHeight) / image.clientHeight];
}

$("tools").addEventListener("change", () => {
  $("frame-box").classList.toggle("painting", tool() !== "pick");
  $("people-help").textContent = HELP[tool()];
});

$("paint").addEventListener("pointerdown", (event) => {
  const canvas = $("paint");
  canvas.width = canvas.clientWidth;
  canvas.height = canvas.clientHeight;
  canvas.setPointerCapture(event.pointerId);
  stroke = { mode: tool(), radius: Number($("brush").value), points: [toFrame(event)], last: [event.offsetX, event.offsetY] };
});

$("paint").addEventListener("pointermove", (event) => {
  if (!stroke) return;
  const context = $("paint").getContext("2d");
  const scale = $("people-view").clientWidth / $("people-view").naturalWidth;
  context.strokeStyle = stroke.mode === "add" ? "rgba(255,255,255,0.7)" : "rgba(0,0,0,0.7)";
  context.lineWidth = 2 * stroke.radius * scale;
  context.lineCap = context.lineJoin = "round";
  context.beginPath();
  context.moveTo(...stroke.last);
  context.lineTo(event.offsetX, event.offsetY);
  context.stroke();
  stroke.last = [event.offsetX, event.offsetY];
  stroke.points.push(toFrame(event));
});

$("paint").addEventListener("pointerup", () => {
  if (!stroke) return;
  const { mode, radius, points } = stroke;
  stroke = null;
  act(async () => {
    const next = await call("POST", "/paint", { mode, radius, points });
    $("people-view").addEventListener("load", () => {
      $("paint").getContext("2d").clearRect(0, 0, $("paint").width, $("paint").height);
    }, { once: true });
    return next;
  });
});

$("clear-paint").addEventListener("click", () => act(() => call("POST", "/paint/clear")));

$("people-list").addEventListener("change", (event) => {
  const person = Number(event.target.dataset.person);
  act(() => call("POST", "/keep", { person, keep: event.target.checked }));
});

$("settings").addEventListener("change", constrainSettings);

$("background-file").addEventListener("change", () => {
  const file = $("background-file").files[0];
  if (!file) return;
  act(async () => {
    const next = await upload("/background", file, () => {});
    $("background-file").value = "";
    $("use-image").disabled = false;
    $("use-image").checked = true;
    return next;
  });
});

$("settings").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData($("settings"));
  const background = form.get("background-kind") === "image" ? "image" : $("colour").value;
  const settings = { model: form.get("model"), outputs: form.getAll("outputs"), format: form.get("format"), background };
  cancelledJob = null;
  act(() => call("POST", "/jobs", settings));
});

$("cancel").addEventListener("click", () => {
  const job = state && state.job;
  if (!job) return;
  cancelledJob = job.id;
  clearInterval(liveTimer);
  act(() => call("POST", `/jobs/${job.id}/cancel`));
});

$("live").addEventListener("load", () => {
  shownFrames.add($("live").dataset.frame);
  $("live").dataset.framesShown = String(shownFrames.size);
});

refresh();
