// Progressive enhancement for the pages: drag-and-drop uploads with progress, job polling,
// admin forms. Every call sends the session's CSRF token.
"use strict";
// The texts shown here, translated by the server into the page's language (base.html, #i18n).
const T = (() => { const el = document.getElementById("i18n"); try { return el ? JSON.parse(el.textContent) : {}; } catch (e) { return {}; } })();
const t = (key, english) => T[key] || english;
const t_ = t;
// A confidence (0..1) as the page shows it: a whole percentage in the page's language.
const percent = (c) => (c === null || c === undefined || c === "") ? "" : new Intl.NumberFormat(document.documentElement.lang || "en", { style: "percent", maximumFractionDigits: 0 }).format(Math.min(Number(c), 0.99));
const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

function send(method, url, body, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.setRequestHeader("Accept", "application/json");
    if (body && !(body instanceof FormData)) { xhr.setRequestHeader("Content-Type", "application/json"); body = JSON.stringify(body); }
    if (onProgress) xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => { let data = null; try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      resolve({ status: xhr.status, data }); };
    xhr.onerror = () => resolve({ status: 0, data: { message: t("network_error", "network error") } });
    xhr.send(body);
  });
}
const showError = (el, msg) => { if (el) { el.textContent = msg; el.hidden = !msg; } };

// -- photo drop zone ------------------------------------------------------------------------
function setupDropzone(form) {
  const zone = form.querySelector("#dropzone"), input = form.querySelector("#photo-files");
  const list = form.querySelector("#file-list"), err = form.querySelector("#upload-error"); const files = [];
  const looksLikeImage = (f) => f.type.startsWith("image/") || (!f.type && /\.(jpe?g|png|gif|webp|tiff?|bmp|hei[cf])$/i.test(f.name));
  const add = (fl) => { const refused = [];
    for (const f of fl) { if (!looksLikeImage(f)) { refused.push(f.name); continue; } files.push(f);
      // One view label per photo: the catalogue keeps front, back and details apart.
      const li = document.createElement("li"); li.innerHTML = "<span class='file-name'></span><input class='photo-view' maxlength='100'><progress max='1' value='0'></progress><span class='state'></span>";
      li.firstChild.textContent = f.name; const viewInput = li.querySelector(".photo-view");
      viewInput.setAttribute("aria-label", list.dataset.viewLabel || "View"); viewInput.placeholder = list.dataset.viewPlaceholder || "";
      viewInput.value = (form.querySelector("#photo-view") || {}).value || ""; li.querySelector(".state").textContent = list.dataset.ready || "ready";
      f.row = li; list.appendChild(li); }
    showError(err, refused.length ? `${list.dataset.notImage || "Not an image, not added:"} ${refused.join(", ")}` : ""); };
  input.addEventListener("change", () => { add(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => add(e.dataTransfer.files));
  // The label for all photos fills each photo's label that was left empty.
  const allView = form.querySelector("#photo-view");
  if (allView) allView.addEventListener("input", () => { for (const f of files) { const v = f.row.querySelector(".photo-view");
    if (!v.dataset.own) v.value = allView.value; } });
  list.addEventListener("input", (e) => { if (e.target.classList.contains("photo-view")) e.target.dataset.own = "1"; });
  const viewOf = (f) => f.row.querySelector(".photo-view").value.trim();
  return {
    files, viewOf,
    async uploadAll(objectId) {
      const problems = [];
      for (const f of files) {
        if (f.done) continue;
        const fd = new FormData(); fd.append("files", f, f.name); fd.append("views", viewOf(f));
        const bar = f.row.querySelector("progress"), state = f.row.querySelector(".state");
        state.textContent = t("uploading", "uploading");
        const r = await send("POST", `/api/v1/objects/${encodeURIComponent(objectId)}/photos`, fd, (p) => (bar.value = p));
        bar.value = 1;
        if (r.status === 201) { const o = r.data[0]; state.textContent = o.outcome === "duplicate" ? t("already_stored", "already stored") : o.outcome === "error" ? t("failed", "failed") : t("stored", "stored"); f.done = o.outcome !== "error";
          if (o.outcome === "error") problems.push(o.message); }
        else { state.textContent = t("failed", "failed"); problems.push(`${f.name}: ${(r.data && r.data.message) || "HTTP " + r.status}`); }
      }
      return problems;
    },
  };
}

const uploadForm = document.getElementById("upload-form");
if (uploadForm) {
  const dz = setupDropzone(uploadForm);
  uploadForm.addEventListener("submit", async (e) => {
    e.preventDefault(); const btn = document.getElementById("upload-submit"); const err = document.getElementById("upload-error");
    showError(err, ""); btn.disabled = true;
    const body = {}; new FormData(uploadForm).forEach((v, k) => { if (v && typeof v === "string" && k !== "files" && k !== "views") body[k] = v.trim(); });
    delete body.view;
    if (!dz.files.length) { showError(err, uploadForm.dataset.needPhoto || "Add at least one photo."); btn.disabled = false; return; }
    // The object and its photos in one request: all or nothing, never an object without photos.
    const save = async () => { const fd = new FormData(); fd.append("record", JSON.stringify(body));
      for (const f of dz.files) { fd.append("files", f, f.name); fd.append("views", dz.viewOf(f)); }
      return send("POST", "/api/v1/objects/with-photos", fd, (p) => dz.files.forEach((f) => (f.row.querySelector("progress").value = p))); };
    let r = await save();
    if (r.status === 409 && r.data && /does not exist yet/.test(r.data.message || "")) {
      // Ask before a (possibly misspelt) institution becomes a new one.
      if (confirm(r.data.message.replace(/ \(send create_institution=true.*\)$/, ""))) { body.create_institution = true; r = await save(); }
      else { showError(err, r.data.message); btn.disabled = false; return; }
    }
    if (r.status !== 201) { showError(err, (r.data && r.data.message) || `HTTP ${r.status}`); btn.disabled = false; return; }
    window.location = `/objects/${encodeURIComponent(body.object_id)}`;
  });
}
const photoForm = document.getElementById("photo-form");
if (photoForm) {
  const dz = setupDropzone(photoForm);
  photoForm.addEventListener("submit", async (e) => {
    e.preventDefault(); const err = document.getElementById("upload-error"); showError(err, "");
    const problems = await dz.uploadAll(photoForm.dataset.objectId);
    if (problems.length) showError(err, problems.join("; ")); else window.location.reload();
  });
}
document.querySelectorAll("[data-delete-photo]").forEach((b) => b.addEventListener("click", async () => {
  if (!confirm(t("delete_photo", "Delete this photo?"))) return;
  const r = await send("DELETE", `/api/v1/photos/${b.dataset.deletePhoto}`);
  if (r.status === 200) window.location.reload(); else alert((r.data && r.data.message) || `HTTP ${r.status}`);
}));

// -- admin forms (JSON to the API) ------------------------------------------------------------
document.querySelectorAll("[data-api-form]").forEach((form) => form.addEventListener("submit", async (e) => {
  e.preventDefault(); const body = {}; new FormData(form).forEach((v, k) => { if (v) body[k] = v; });
  let r = await send("POST", form.dataset.apiForm, body);
  // Ask before a (possibly misspelt) institution becomes a new one.
  if (r.status === 409 && r.data && /does not exist yet/.test(r.data.message || "")
      && confirm(r.data.message.replace(/ \(send create_institution=true.*\)$/, ""))) {
    body.create_institution = true; r = await send("POST", form.dataset.apiForm, body); }
  if (r.status === 201) window.location.reload(); else showError(form.querySelector(".error"), (r.data && r.data.message) || `HTTP ${r.status}`);
}));

// -- batch jobs ---------------------------------------------------------------------------------
const jobForm = document.getElementById("job-form");
if (jobForm) jobForm.addEventListener("submit", async (e) => {
  e.preventDefault(); const err = document.getElementById("job-error"); showError(err, "");
  const bar = document.getElementById("job-upload-progress"); bar.hidden = false;
  const fd = new FormData(jobForm);
  for (const [k, v] of [...fd.entries()]) if ((v instanceof File && !v.name) || v === "") fd.delete(k);
  const r = await send("POST", "/api/v1/jobs", fd, (p) => (bar.value = p * 100));
  if (r.status === 202) window.location = `/jobs/${r.data.id}`;
  else { bar.hidden = true; showError(err, (r.data && r.data.message) || `HTTP ${r.status}`); }
});
const jobEl = document.getElementById("job");
if (jobEl) {
  const id = jobEl.dataset.jobId;
  const started = jobEl.dataset.status;
  const render = async (job) => {
    document.getElementById("job-status").textContent = (T.job_status || {})[job.status] || job.status;
    document.getElementById("job-status").className = `badge job-${job.status}`;
    document.getElementById("job-counts").textContent = `${job.done} / ${job.total} ${t("listings", "listings")}`;
    const bar = document.getElementById("job-progress"); bar.max = job.total || 1; bar.value = job.done;
    const over = job.status === "succeeded" || job.status === "failed";
    // A finished job's line is the server's, in the reader's language: keep it.
    if (!over) document.getElementById("job-message").textContent = job.message || "";
    // Errors as they happen: each listing that could not be checked, while the job runs.
    const list = document.getElementById("job-errors");
    if (job.errors && job.errors.length && list.children.length !== job.errors.length) {
      list.replaceChildren(...job.errors.map((e) => { const li = document.createElement("li"); li.className = "small"; li.textContent = e; return li; }));
      document.getElementById("job-error-count").textContent = `(${job.errors.length})`;
      document.getElementById("job-errors-panel").hidden = false;
    }
    // The hits table is drawn by the server from the report: load it once the job is over.
    if (over && started !== job.status) window.location.reload();
    return over;
  };
  const poll = async () => {
    const r = await fetch(`/api/v1/jobs/${id}`, { headers: { Accept: "application/json" } });
    if (r.ok && (await render(await r.json()))) return;
    setTimeout(poll, 1000);
  };
  poll();
}
