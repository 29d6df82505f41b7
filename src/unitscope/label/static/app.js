// unitscope label app: one unit at a time. Text from the server is written
// with textContent only (never innerHTML), and this file is the page's only
// script (the Content-Security-Policy forbids inline scripts).
"use strict";

(function () {
  const TYPES = Array.from(document.querySelectorAll(".type")).map((b) => b.dataset.type);
  const $ = (id) => document.getElementById(id);
  const state = { unit: null, marked: new Set(), type: null, busy: false };

  function say(text, isError) {
    const box = $("message");
    box.textContent = text || "";
    box.classList.toggle("error", Boolean(isError));
  }

  function showProgress(p) {
    if (!p) return;
    const bar = $("progress");
    bar.max = Math.max(1, p.annotations_needed);
    bar.value = p.annotations_done;
    const pct = Math.floor((100 * p.annotations_done) / Math.max(1, p.annotations_needed));
    $("progress-text").textContent =
      `${p.annotations_done} / ${p.annotations_needed} annotations (${pct}%) · ` +
      `${p.units_complete} / ${p.units_total} units done · you: ${p.mine}`;
  }

  function updateCounts() {
    const total = state.unit ? state.unit.images.length : 0;
    $("marked-count").textContent = String(state.marked.size);
    $("image-count").textContent = String(total);
    const precision = total ? Math.round((100 * (total - state.marked.size)) / total) : 100;
    $("precision").textContent = `${precision}%`;
  }

  function chooseType(type) {
    state.type = type;
    for (const button of document.querySelectorAll(".type")) {
      button.setAttribute("aria-checked", String(button.dataset.type === type));
    }
  }

  function toggle(tile) {
    const id = tile.dataset.id;
    if (state.marked.has(id)) state.marked.delete(id);
    else state.marked.add(id);
    const on = state.marked.has(id);
    tile.classList.toggle("marked", on);
    tile.setAttribute("aria-pressed", String(on));
    updateCounts();
  }

  function render(unit) {
    state.unit = unit;
    state.marked = new Set();
    chooseType(null);
    $("concept").value = "";
    say("");
    const grid = $("grid");
    grid.replaceChildren();
    $("unit-name").textContent = `${unit.network} · ${unit.layer} · unit ${unit.unit}`;
    for (const image of unit.images) {
      const tile = document.createElement("button");
      tile.type = "button";
      tile.className = "tile";
      tile.dataset.id = image.id;
      tile.setAttribute("aria-pressed", "false");
      tile.title = `image ${image.id}: click if it does not fit`;
      const img = document.createElement("img");
      img.src = image.url;
      img.alt = `segmentation ${image.rank + 1}`;
      img.loading = "lazy";
      const rank = document.createElement("span");
      rank.className = "rank";
      rank.textContent = String(image.rank + 1);
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "doesn't fit";
      tile.append(img, rank, badge);
      tile.addEventListener("click", () => toggle(tile));
      grid.append(tile);
    }
    updateCounts();
    $("concept").focus();
  }

  async function call(path, options) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    return { status: response.status, body: body };
  }

  async function loadNext() {
    const { status, body } = await call("/api/next", { cache: "no-store" });
    if (status === 401) { window.location.assign("/login"); return; }
    if (status !== 200 || !body) { say(`could not load the next unit (HTTP ${status})`, true); return; }
    showProgress(body.progress);
    if (!body.unit) {
      state.unit = null;
      $("workspace").hidden = true;
      $("done").hidden = false;
      return;
    }
    render(body.unit);
  }

  async function submit() {
    if (state.busy || !state.unit) return;
    const label = $("concept").value.trim();
    if (!label) { say("Name the concept first.", true); $("concept").focus(); return; }
    if (!state.type) { say("Choose its type: press 1–6.", true); return; }
    state.busy = true;
    $("submit").disabled = true;
    say("saving…");
    try {
      const { status, body } = await call("/api/answers", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          network: state.unit.network,
          layer: state.unit.layer,
          unit: state.unit.unit,
          label: label,
          type: state.type,
          marked: Array.from(state.marked),
        }),
      });
      if (status === 200) {
        await loadNext();
      } else if (status === 409) {
        say(body && body.detail ? String(body.detail) : "already answered", true);
        await loadNext();
      } else if (status === 401) {
        window.location.assign("/login");
      } else {
        const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : "";
        say(`not saved (HTTP ${status}) ${detail}`, true);
      }
    } catch (error) {
      say("not saved: the server cannot be reached; press Enter to retry", true);
    } finally {
      state.busy = false;
      $("submit").disabled = false;
    }
  }

  document.querySelectorAll(".type").forEach((button) => {
    button.addEventListener("click", () => chooseType(button.dataset.type));
  });
  $("submit").addEventListener("click", submit);

  $("concept").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      if (!state.type) {
        $("concept").blur();
        say("Now press 1–6 for the type, then Enter.");
      } else {
        submit();
      }
    } else if (event.key === "Escape") {
      $("concept").blur();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.target === $("concept") || event.ctrlKey || event.metaKey || event.altKey) return;
    const number = Number.parseInt(event.key, 10);
    if (number >= 1 && number <= TYPES.length) {
      event.preventDefault();
      chooseType(TYPES[number - 1]);
      say("Press Enter to submit.");
    } else if (event.key === "Enter") {
      event.preventDefault();
      submit();
    } else if (event.key === "/") {
      event.preventDefault();
      $("concept").focus();
    }
  });

  loadNext();
})();
