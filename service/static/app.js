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
  const list = form.querySelector("#file-list"); const files = [];
  const add = (fl) => { for (const f of fl) { if (!f.type.startsWith("image/") && f.type) continue; files.push(f);
      const li = document.createElement("li"); li.innerHTML = "<span></span><progress max='1' value='0'></progress><span class='state'></span>";
      li.querySelector(".state").textContent = t("ready", "ready");
      li.firstChild.textContent = f.name; f.row = li; list.appendChild(li); } };
  input.addEventListener("change", () => { add(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => add(e.dataTransfer.files));
  return {
    files,
    async uploadAll(objectId) {
      const view = form.querySelector("#photo-view").value.trim(); const problems = [];
      for (const f of files) {
        if (f.done) continue;
        const fd = new FormData(); fd.append("files", f, f.name); if (view) fd.append("view", view);
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
    const body = {}; new FormData(uploadForm).forEach((v, k) => { if (v && typeof v === "string" && k !== "files") body[k] = v.trim(); });
    delete body.view;
    const r = await send("POST", "/api/v1/objects", body);
    if (r.status !== 201 && r.status !== 409) { showError(err, (r.data && r.data.message) || `HTTP ${r.status}`); btn.disabled = false; return; }
    const problems = await dz.uploadAll(body.object_id);
    if (problems.length) { showError(err, problems.join("; ")); btn.disabled = false; return; }
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
  const r = await send("POST", form.dataset.apiForm, body);
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
  const render = async (job) => {
    document.getElementById("job-status").textContent = (T.job_status || {})[job.status] || job.status;
    document.getElementById("job-status").className = `badge job-${job.status}`;
    document.getElementById("job-counts").textContent = `${job.done} / ${job.total} ${t("listings", "listings")}`;
    const bar = document.getElementById("job-progress"); bar.max = job.total || 1; bar.value = job.done;
    document.getElementById("job-message").textContent = job.message || "";
    if (job.report_csv_url) {
      document.getElementById("job-csv").href = job.report_csv_url; document.getElementById("job-json").href = job.report_json_url;
      document.getElementById("job-report").hidden = false;
      const rep = await fetch(job.report_json_url, { headers: { Accept: "application/json" } });
      if (rep.ok) { const data = await rep.json(); const t = document.getElementById("job-hits");
        t.innerHTML = ""; const head = t.insertRow();
        [t_("listing", "Listing"), t_("object", "Object"), t_("confidence", "Confidence"), t_("status", "Status"), t_("listing_title", "Listing title")].forEach((v) => { const th = document.createElement("th"); th.textContent = v; head.appendChild(th); });
        for (const h of data.hits) { const tr = t.insertRow(); [h.listing_id, h.object_id, percent(h.confidence), h.status, h.listing_title || ""].forEach((v, i) => {
          const td = tr.insertCell(); if (i === 1) { const a = document.createElement("a"); a.href = `/objects/${encodeURIComponent(v)}`; a.textContent = v; td.appendChild(a); } else td.textContent = v; }); }
        if (!data.hits.length) t.insertRow().insertCell().textContent = t_("no_listing_matched", "No listing matched a stolen or missing object.");
        document.getElementById("job-hits-panel").hidden = false; }
    }
    return job.status === "succeeded" || job.status === "failed";
  };
  const poll = async () => {
    const r = await fetch(`/api/v1/jobs/${id}`, { headers: { Accept: "application/json" } });
    if (r.ok && (await render(await r.json()))) return;
    setTimeout(poll, 1000);
  };
  poll();
}
