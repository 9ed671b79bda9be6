/* vislab — product-photo tagging page.
 * Plain browser JS, no dependencies. Talks to the same-origin API:
 *   GET  /v1/model  -> model info (backbone, tasks, thresholds, version, limits)
 *   POST /v1/tag    -> one photo (multipart field "file") -> caption + attributes
 *   POST /v1/similar?k=K -> the same, plus the K most similar catalog products (when the model info says
 *                       `similar` is set, i.e. the service runs with a catalog index); used instead of /v1/tag
 */
(function () {
  "use strict";

  var API_MODEL = "/v1/model";
  var API_TAG = "/v1/tag";
  var API_SIMILAR = "/v1/similar";
  var API_READY = "/readyz";
  var SIMILAR_K = 8;
  var DEFAULT_CONCURRENCY = 32;

  var HTTP_STATUS_TEXT = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 413: "Payload Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Content", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout"
  };

  var state = {
    model: null,
    controllers: new Set(),
    objectUrls: new Set()
  };

  var els = {};

  function $(id) { return document.getElementById(id); }

  // ---------- helpers ----------

  function pct(x) {
    var n = Number(x);
    if (!isFinite(n)) return "–";
    return Math.round(Math.min(1, Math.max(0, n)) * 100) + "%";
  }

  function widthPct(x) {
    var n = Number(x);
    if (!isFinite(n)) return "0%";
    return (Math.min(1, Math.max(0, n)) * 100).toFixed(1) + "%";
  }

  function formatBytes(n) {
    if (!isFinite(n) || n <= 0) return "";
    if (n >= 1024 * 1024) return (n / (1024 * 1024)).toFixed(n % (1024 * 1024) ? 1 : 0) + " MB";
    if (n >= 1024) return Math.round(n / 1024) + " KB";
    return n + " B";
  }

  function statusText(res) {
    var text = res.statusText || HTTP_STATUS_TEXT[res.status] || "";
    return ("HTTP " + res.status + (text ? " " + text : "")).trim();
  }

  /** Turn a FastAPI-style {"detail": ...} into one readable line. */
  function detailToText(detail) {
    if (detail == null) return "";
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map(function (d) {
        if (d && typeof d === "object") {
          var loc = Array.isArray(d.loc) ? d.loc.join(".") : "";
          return (loc ? loc + ": " : "") + (d.msg || JSON.stringify(d));
        }
        return String(d);
      }).join("; ");
    }
    if (typeof detail === "object" && detail.msg) return String(detail.msg);
    try { return JSON.stringify(detail); } catch (e) { return String(detail); }
  }

  /** Read an error response: JSON detail when there is one, else the HTTP status text. */
  function errorMessage(res) {
    return res.text().then(function (body) {
      var msg = "";
      try {
        var data = JSON.parse(body);
        if (data && typeof data === "object") msg = detailToText(data.detail);
      } catch (e) { /* not JSON */ }
      return msg || statusText(res);
    }, function () { return statusText(res); });
  }

  function sumCounts() {
    var cards = els.results.querySelectorAll("article.result");
    var c = { total: cards.length, pending: 0, done: 0, error: 0, review: 0 };
    cards.forEach(function (card) {
      var s = card.dataset.state;
      if (s in c) c[s] += 1;
      if (card.classList.contains("needs-review")) c.review += 1;
    });
    return c;
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function updateSummary() {
    var c = sumCounts();
    els.clear.disabled = c.total === 0;
    els.empty.hidden = c.total > 0;
    if (!c.total) { els.summary.textContent = "No photos yet."; return; }
    var parts = [plural(c.total, "photo")];
    if (c.pending) parts.push(c.pending + " tagging");
    if (c.done) parts.push(c.done + " tagged");
    if (c.review) parts.push(c.review + " need" + (c.review === 1 ? "s" : "") + " review");
    if (c.error) parts.push(c.error + " failed");
    els.summary.textContent = parts.join(" · ");
  }

  // ---------- model info ----------

  function loadModel(attempt) {
    attempt = attempt || 0;
    fetch(API_MODEL, { headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok) return errorMessage(res).then(function (m) { throw new Error(m); });
        return res.json();
      })
      .then(function (m) {
        renderModel(m);
        if (attempt >= 0) checkReady(0);
      })
      .catch(function (err) {
        var delay = Math.min(30000, 2000 * Math.pow(1.5, Math.max(0, attempt)));
        els.modelInfo.dataset.state = "error";
        els.modelStatus.textContent = "Model not ready (" + (err && err.message ? err.message : "network error") +
          ") — retrying…";
        setTimeout(function () { loadModel(Math.max(0, attempt) + 1); }, delay);
      });
  }

  /** /readyz answers 503 while the model loads and warms up; show that, then reload the model info once. */
  function checkReady(attempt) {
    fetch(API_READY, { headers: { Accept: "application/json" } })
      .then(function (res) {
        if (res.ok || res.status === 404) { // 404: no readiness probe, /v1/model answering is enough
          var wasWarming = els.modelInfo.dataset.state === "warming";
          setModelReady();
          if (wasWarming) loadModel(-1); // thresholds may be final only now; -1: do not poll again
          return;
        }
        return errorMessage(res).then(function (m) { throw new Error(m); });
      })
      .catch(function (err) {
        els.modelInfo.dataset.state = "warming";
        els.modelStatus.textContent = "Model loading" + (err && err.message && err.message !== "loading" ?
          " (" + err.message + ")" : "") + "…";
        setTimeout(function () { checkReady(attempt + 1); }, Math.min(10000, 1000 * Math.pow(1.4, attempt)));
      });
  }

  function setModelReady() {
    var m = state.model || {};
    els.modelInfo.dataset.state = "ready";
    els.modelStatus.textContent = m.lab ? m.lab + " model" : "Model ready";
  }

  function renderModel(m) {
    state.model = m || {};
    var tasks = (m && m.tasks) || {};
    var names = Object.keys(tasks);
    var version = (m && m.version) || {};

    if (els.modelInfo.dataset.state !== "warming") setModelReady();
    els.modelBackbone.textContent = m.backbone || "unknown backbone";
    els.modelTasks.textContent = plural(names.length, "task");
    els.modelVersion.textContent = version.vislab ? "vislab " + version.vislab : "vislab";
    var similar = similarInfo(m);
    els.modelSimilar.hidden = !similar;
    if (similar) {
      els.modelSimilar.textContent = "similar products: " + similar.items + " in the catalog";
      els.modelSimilar.title = "Each photo is also matched against the " + plural(similar.items, "catalog product") +
        (similar.dim ? " (" + similar.dim + "-d embeddings, cosine similarity)" : "");
    }
    var title = [];
    if (m.checkpoint) title.push("checkpoint " + m.checkpoint);
    if (Array.isArray(m.image_size)) title.push("input " + m.image_size.join("×"));
    if (version.torch) title.push("torch " + version.torch);
    els.modelInfo.title = title.join(" · ");
    els.modelSummary.hidden = false;

    // Limits hint in the drop zone.
    var limits = m.limits || {};
    var hint = [];
    var maxBytes = limits.max_upload_bytes || limits.max_body_bytes;
    if (maxBytes) hint.push("up to " + formatBytes(maxBytes) + " per photo");
    if (limits.max_pixels) hint.push("max " + Math.round(limits.max_pixels / 1e6) + " MP");
    var text = hint.join(", ");
    els.limits.textContent = text ? text.charAt(0).toUpperCase() + text.slice(1) : "";

    // Details panel.
    var meta = [
      ["Lab", m.lab], ["Backbone", m.backbone], ["Checkpoint", m.checkpoint],
      ["Input size", Array.isArray(m.image_size) ? m.image_size.join(" × ") : null],
      ["vislab", version.vislab], ["torch", version.torch],
      ["Similar products", similar ? plural(similar.items, "product") + " in the catalog" : null]
    ];
    els.modelMeta.textContent = "";
    meta.forEach(function (kv) {
      if (kv[1] == null || kv[1] === "") return;
      var div = document.createElement("div");
      var dt = document.createElement("dt"); dt.textContent = kv[0];
      var dd = document.createElement("dd"); dd.textContent = String(kv[1]);
      div.append(dt, dd);
      els.modelMeta.append(div);
    });
    var metrics = m.metrics && typeof m.metrics === "object" ? m.metrics : {};
    var hasMetrics = names.some(function (n) { return metrics[n] && typeof metrics[n] === "object"; });
    els.tasksTable.querySelectorAll(".metric-col").forEach(function (th) { th.hidden = !hasMetrics; });
    var notes = [];
    if (typeof m.review_precision === "number") {
      notes.push("Thresholds were chosen for " + pct(m.review_precision) + " precision on validation.");
    }
    if (hasMetrics) {
      notes.push("Metrics" + (metrics.split ? " on the " + metrics.split + " split" : "") +
        (metrics.n ? " (" + metrics.n + " photos)" : "") + ".");
    }
    els.metricsNote.textContent = notes.join(" ");
    els.metricsNote.hidden = !notes.length;

    var tbody = els.tasksTable.tBodies[0];
    tbody.textContent = "";
    var thresholds = m.thresholds || {};
    names.forEach(function (name) {
      var tr = document.createElement("tr");
      var classes = Array.isArray(tasks[name]) ? tasks[name] : [];
      var th = thresholds[name];
      var td1 = document.createElement("th"); td1.scope = "row"; td1.textContent = name;
      var td2 = document.createElement("td"); td2.textContent = String(classes.length);
      td2.title = classes.join(", ");
      var td3 = document.createElement("td");
      td3.textContent = th == null ? "always review" : pct(th);
      tr.append(td1, td2, td3);
      if (hasMetrics) {
        var mt = metrics[name] || {};
        ["accuracy", "f1"].forEach(function (k) {
          var td = document.createElement("td");
          td.textContent = typeof mt[k] === "number" ? (mt[k] * 100).toFixed(1) + "%" : "–";
          tr.append(td);
        });
      }
      tbody.append(tr);
    });
    els.modelDetails.hidden = names.length === 0;
  }

  /** The catalog index the service searches ({items, dim}), or null when it runs without one. */
  function similarInfo(m) {
    var s = m && m.similar;
    return s && typeof s === "object" && Number(s.items) > 0 ? { items: Number(s.items), dim: s.dim } : null;
  }

  /** Where a new photo goes: /v1/similar (tags and matches in one request) when there is an index, else /v1/tag. */
  function endpoint() {
    return similarInfo(state.model) ? API_SIMILAR + "?k=" + SIMILAR_K : API_TAG;
  }

  // ---------- cards ----------

  function createCard(file) {
    var card = els.cardTpl.content.firstElementChild.cloneNode(true);
    card.dataset.filename = file.name;
    card.querySelector(".filename").textContent = file.name;
    card.querySelector(".filename").title = file.name;
    card.setAttribute("aria-label", file.name);

    var img = card.querySelector(".thumb img");
    var fallback = card.querySelector(".thumb-fallback");
    img.alt = "Photo " + file.name;
    img.addEventListener("error", function () {
      img.hidden = true;
      fallback.hidden = false;
    });
    try {
      var url = URL.createObjectURL(file);
      state.objectUrls.add(url);
      card._objectUrl = url;
      img.src = url;
    } catch (e) {
      img.hidden = true;
      fallback.hidden = false;
    }

    card._file = file;
    card.querySelector("button.copy").addEventListener("click", function () { copyCard(card, this); });
    card.querySelector("button.retry").addEventListener("click", function () { tagFile(card); });
    return card;
  }

  function setPending(card) {
    card.dataset.state = "pending";
    card.setAttribute("aria-busy", "true");
    card.classList.remove("needs-review");
    card.querySelector(".pending-text").hidden = false;
    card.querySelector(".caption").hidden = true;
    card.querySelector(".error").hidden = true;
    card.querySelector(".badge.review").hidden = true;
    card.querySelector(".attrs").textContent = "";
    clearSimilar(card);
    card.querySelector("button.copy").disabled = true;
    card.querySelector("button.copy").hidden = false;
    card.querySelector("button.retry").hidden = true;
    delete card.dataset.json;
  }

  function renderDone(card, answer) {
    answer = answer || {};
    card.dataset.json = JSON.stringify(answer);
    card._answer = answer;

    var attrs = answer.attributes && typeof answer.attributes === "object" ? answer.attributes : {};
    var review = Array.isArray(answer.review) ? answer.review.slice() : Object.keys(attrs).filter(function (k) {
      return attrs[k] && attrs[k].needs_review;
    });
    var needsReview = answer.needs_review === true || (answer.needs_review == null && review.length > 0);

    card.querySelector(".pending-text").hidden = true;
    var caption = card.querySelector(".caption");
    caption.textContent = answer.caption || "";
    caption.hidden = !answer.caption;

    var badge = card.querySelector(".badge.review");
    badge.hidden = !needsReview;
    if (needsReview) {
      var title = review.length ? "Needs review: " + review.join(", ") : "Needs review";
      badge.title = title;
      badge.setAttribute("aria-label", title);
      card.classList.add("needs-review");
    }

    var box = card.querySelector(".attrs");
    box.textContent = "";
    Object.keys(attrs).forEach(function (task) {
      box.append(renderAttr(task, attrs[task] || {}, review.indexOf(task) !== -1));
    });

    card.querySelector("button.copy").disabled = false;
    card.dataset.state = "done";
    card.removeAttribute("aria-busy");
  }

  function renderAttr(task, a, inReviewList) {
    var row = els.attrTpl.content.firstElementChild.cloneNode(true);
    row.dataset.task = task;
    var flagged = a.needs_review === true || (a.needs_review == null && inReviewList);
    if (flagged) row.classList.add("needs-review");

    row.querySelector(".task").textContent = task;
    var label = row.querySelector(".label");
    label.textContent = a.label == null ? "–" : String(a.label);
    label.title = label.textContent;

    var fill = row.querySelector(".bar .fill");
    fill.style.width = widthPct(a.confidence);
    var tick = row.querySelector(".bar .tick");
    if (a.threshold != null && isFinite(Number(a.threshold))) {
      tick.hidden = false;
      tick.style.left = widthPct(a.threshold);
    }

    row.querySelector(".conf").textContent = pct(a.confidence);

    var topk = Array.isArray(a.top_k) ? a.top_k.slice(0, 3) : [];
    // Each "label NN%" is kept together when the line wraps; textContent reads "Men 91% · Women 5% · Boys 2%".
    var topkEl = row.querySelector(".topk");
    topk.forEach(function (t, i) {
      if (i) topkEl.append(" ");
      var k = document.createElement("span");
      k.className = "k";
      k.textContent = t.label + " " + pct(t.confidence) + (i < topk.length - 1 ? " ·" : "");
      topkEl.append(k);
    });

    var desc = task + ": " + label.textContent + ", " + pct(a.confidence) + " confidence";
    if (a.threshold == null) desc += ", always reviewed";
    else desc += ", review threshold " + pct(a.threshold);
    if (flagged) desc += ", needs review";
    row.title = desc;
    return row;
  }

  function clearSimilar(card) {
    var box = card.querySelector(".similar");
    box.hidden = true;
    delete box.dataset.count;
    box.querySelector(".similar-row").textContent = "";
    box.querySelector(".similar-empty").hidden = true;
  }

  /** The "Similar products" strip under the attributes: one thumbnail per catalog match, best first. */
  function renderSimilar(card, matches) {
    var box = card.querySelector(".similar");
    var row = box.querySelector(".similar-row");
    var list = Array.isArray(matches) ? matches.filter(function (x) { return x && typeof x === "object"; }) : [];
    row.textContent = "";
    list.forEach(function (match) { row.append(renderMatch(match)); });
    box.dataset.count = String(list.length);
    box.querySelector(".similar-count").textContent = list.length ? String(list.length) : "";
    row.hidden = !list.length;
    row.setAttribute("aria-label", "Similar products to " + card.dataset.filename);
    box.querySelector(".similar-empty").hidden = list.length > 0;
    box.hidden = false;
  }

  function matchLabel(labels) {
    labels = labels && typeof labels === "object" ? labels : {};
    if (labels.articleType != null && labels.articleType !== "") return String(labels.articleType);
    var first = Object.keys(labels)[0];
    return first == null || labels[first] == null ? "" : String(labels[first]);
  }

  function renderMatch(match) {
    var fig = els.matchTpl.content.firstElementChild.cloneNode(true);
    var id = match.id == null ? "" : String(match.id);
    var score = Number(match.score);
    var label = matchLabel(match.labels);
    fig.dataset.id = id;
    fig.dataset.score = String(match.score);

    var img = fig.querySelector("img");
    var fallback = fig.querySelector(".match-fallback");
    img.alt = (label ? label + " " : "Product ") + id;
    img.addEventListener("error", function () {
      img.hidden = true;
      fallback.hidden = false;
    });
    var link = fig.querySelector(".match-link");
    if (typeof match.image === "string" && match.image) {
      img.src = match.image;
      link.href = match.image;
    } else {
      img.hidden = true;
      fallback.hidden = false;
    }

    var scoreEl = fig.querySelector(".match-score");
    scoreEl.textContent = isFinite(score) ? score.toFixed(2) : "–";
    fig.querySelector(".match-label").textContent = label || "–";
    fig.querySelector(".match-id").textContent = id;

    var labels = match.labels && typeof match.labels === "object" ? match.labels : {};
    var desc = [(match.rank != null ? "#" + match.rank + " " : "") + id,
      "similarity " + scoreEl.textContent];
    Object.keys(labels).forEach(function (t) { desc.push(t + ": " + labels[t]); });
    fig.title = desc.join("\n");
    link.setAttribute("aria-label", (label ? label + ", " : "") + id + ", similarity " + scoreEl.textContent +
      " (opens the catalog image)");
    return fig;
  }

  function renderError(card, message) {
    card.dataset.state = "error";
    card.removeAttribute("aria-busy");
    card.classList.remove("needs-review");
    card.querySelector(".pending-text").hidden = true;
    card.querySelector(".caption").hidden = true;
    card.querySelector(".badge.review").hidden = true;
    card.querySelector(".attrs").textContent = "";
    clearSimilar(card);
    var err = card.querySelector(".error");
    var name = card.dataset.filename;
    var text = String(message);
    if (text.indexOf(name + ": ") === 0) text = text.slice(name.length + 2); // the server names the file too
    err.textContent = "Could not tag " + name + ": " + text;
    err.hidden = false;
    card.querySelector("button.copy").hidden = true;
    card.querySelector("button.retry").hidden = false;
  }

  // ---------- upload ----------

  function tagFile(card) {
    if (!card._endpoint) card._endpoint = endpoint(); // a retry re-sends where the first try went
    var similar = card._endpoint !== API_TAG;
    setPending(card);
    updateSummary();
    var ctrl = new AbortController();
    state.controllers.add(ctrl);
    var body = new FormData();
    body.append("file", card._file, card._file.name);

    return fetch(card._endpoint, { method: "POST", body: body, signal: ctrl.signal,
      headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok) return errorMessage(res).then(function (m) { throw new TagError(m); });
        return res.json().catch(function () { throw new TagError("the server sent an unreadable answer"); });
      })
      .then(function (answer) {
        if (!similar) { renderDone(card, answer); return; }
        // /v1/similar: {filename, tags: <the /v1/tag answer>, matches: [...]}; the card shows (and copies) the tags.
        if (!answer || typeof answer !== "object" || !answer.tags || typeof answer.tags !== "object") {
          throw new TagError("the server sent an unreadable answer");
        }
        renderDone(card, answer.tags);
        renderSimilar(card, answer.matches);
      })
      .catch(function (err) {
        if (err && err.name === "AbortError") return;
        var msg = err instanceof TagError ? err.message : networkErrorText(card._file);
        renderError(card, msg);
      })
      .then(function () {
        state.controllers.delete(ctrl);
        updateSummary();
      });
  }

  function networkErrorText(file) {
    var limits = (state.model && state.model.limits) || {};
    var maxBytes = limits.max_upload_bytes || limits.max_body_bytes;
    if (maxBytes && file && file.size > maxBytes) {
      return "the connection was closed; the file is " + formatBytes(file.size) + " and the limit is " +
        formatBytes(maxBytes);
    }
    return "network error — is the server running?";
  }

  function TagError(message) { this.message = message; this.name = "TagError"; }
  TagError.prototype = Object.create(Error.prototype);

  /** Run fn over items with at most `limit` in flight; resolves when all settle. */
  function runPool(items, limit, fn) {
    var i = 0;
    function next() {
      if (i >= items.length) return Promise.resolve();
      var item = items[i++];
      return Promise.resolve(fn(item)).then(next, next);
    }
    var workers = [];
    for (var w = 0; w < Math.min(limit, items.length); w++) workers.push(next());
    return Promise.all(workers);
  }

  function handleFiles(fileList) {
    var files = Array.prototype.slice.call(fileList || []);
    if (!files.length) return Promise.resolve();
    var frag = document.createDocumentFragment();
    var cards = files.map(function (f) {
      var card = createCard(f);
      frag.append(card);
      return card;
    });
    els.results.append(frag);
    updateSummary();
    var limit = (state.model && state.model.limits && state.model.limits.max_batch) || DEFAULT_CONCURRENCY;
    return runPool(cards, Math.max(1, limit), tagFile);
  }

  function clearAll() {
    state.controllers.forEach(function (c) { c.abort(); });
    state.controllers.clear();
    els.results.textContent = "";
    state.objectUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    state.objectUrls.clear();
    updateSummary();
    els.input.focus();
  }

  // ---------- copy ----------

  function fallbackCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.className = "copy-buffer";
    document.body.append(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    ta.remove();
    return ok;
  }

  function copyText(text) {
    if (navigator.clipboard && typeof navigator.clipboard.writeText === "function" && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () {
        return fallbackCopy(text);
      });
    }
    return Promise.resolve(fallbackCopy(text));
  }

  function copyCard(card, btn) {
    if (!card.dataset.json) return;
    var text;
    try { text = JSON.stringify(JSON.parse(card.dataset.json), null, 2); } catch (e) { text = card.dataset.json; }
    var focused = document.activeElement;
    copyText(text).then(function (ok) {
      if (focused && focused !== document.activeElement && typeof focused.focus === "function") focused.focus();
      btn.textContent = ok ? "Copied" : "Copy failed";
      btn.classList.toggle("copied", ok);
      clearTimeout(btn._timer);
      btn._timer = setTimeout(function () {
        btn.textContent = "Copy JSON";
        btn.classList.remove("copied");
      }, 1500);
    });
  }

  // ---------- drag and drop ----------

  function hasFiles(e) {
    var dt = e.dataTransfer;
    if (!dt) return false;
    if (dt.types) {
      for (var i = 0; i < dt.types.length; i++) if (dt.types[i] === "Files") return true;
    }
    return false;
  }

  function setupDrop() {
    var depth = 0;
    var zone = els.dropzone;
    // Accept drops anywhere on the page; highlight the zone while files are dragged over the window.
    window.addEventListener("dragenter", function (e) {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth += 1;
      zone.classList.add("dragover");
    });
    window.addEventListener("dragover", function (e) {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
    });
    window.addEventListener("dragleave", function (e) {
      if (!hasFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (!depth) zone.classList.remove("dragover");
    });
    window.addEventListener("drop", function (e) {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      zone.classList.remove("dragover");
      handleFiles(e.dataTransfer.files);
    });
  }

  // ---------- init ----------

  function init() {
    els.input = $("files");
    els.dropzone = $("dropzone");
    els.results = $("results");
    els.summary = $("summary");
    els.empty = $("empty");
    els.clear = $("clear");
    els.limits = $("limits");
    els.modelInfo = $("model-info");
    els.modelStatus = $("model-status");
    els.modelSummary = $("model-summary");
    els.modelBackbone = $("model-backbone");
    els.modelTasks = $("model-tasks");
    els.modelVersion = $("model-version");
    els.modelSimilar = $("model-similar");
    els.modelDetails = $("model-details");
    els.modelMeta = $("model-meta");
    els.metricsNote = $("model-metrics-note");
    els.tasksTable = $("model-tasks-table");
    els.cardTpl = $("card-template");
    els.attrTpl = $("attr-template");
    els.matchTpl = $("match-template");

    els.input.addEventListener("change", function () {
      var files = Array.prototype.slice.call(els.input.files || []);
      els.input.value = ""; // allow choosing the same file again
      handleFiles(files);
    });
    els.clear.addEventListener("click", clearAll);
    setupDrop();
    updateSummary();
    loadModel(0);
  }

  // Small hook for tests and debugging.
  window.vislab = { handleFiles: handleFiles, clear: function () { clearAll(); } };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
