// floorbridge moderator console: follows the list of speakers over server-sent events and sends
// the moderators' actions. Every action names the list version it was decided on; a 409 means
// someone else changed the list first, and the console shows the list as it is now.
// Text from the server is only ever inserted with textContent (never as HTML).
"use strict";

(() => {
  const root = document.getElementById("console");
  if (!root) return;

  const meeting = root.dataset.meeting;
  const session = root.dataset.session;
  const role = root.dataset.role;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const meetingApi = `/api/v1/meetings/${encodeURIComponent(meeting)}`;
  const api = `${meetingApi}/sessions/${encodeURIComponent(session)}/speakers`;
  const $ = (id) => document.getElementById(id);

  const SPEECH = {
    contribution: "Contribution",
    point_of_order: "Point of order",
    interposed_question: "Interposed question",
    answer: "Answer",
    right_of_reply: "Right of reply",
  };
  const CHANNEL = { room: "in the room", web: "web", telegram: "Telegram", discord: "Discord", matrix: "Matrix" };
  const WARNING_SECONDS = 30;

  let shown = null; // the list last rendered
  let timer = null; // {remaining, running, at}: the current speech's time left at `at` (performance.now())
  let inFlight = false; // one action at a time
  let dragging = null; // id of the row being dragged
  let deferred = null; // a list that arrived during a drag, rendered when the drag ends
  let keepFocus = null; // the row to focus after the next render (keyboard moves)

  // ------------------------------------------------------------------ small helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clock(seconds) {
    const whole = seconds >= 0 ? Math.ceil(seconds) : Math.floor(seconds);
    const abs = Math.abs(whole);
    return `${whole < 0 ? "-" : ""}${Math.floor(abs / 60)}:${String(abs % 60).padStart(2, "0")}`;
  }

  const speechLabel = (type) => SPEECH[type] || type;
  const channelLabel = (channel) => CHANNEL[channel] || channel;

  function where(speaker) {
    return el("span", { class: speaker.remote ? "tag remote" : "tag room" }, speaker.remote ? "remote" : "in room");
  }

  function status(text, kind) {
    const node = $("status");
    node.textContent = text;
    node.className = `status ${kind || ""}`;
  }

  function notice(text, kind) {
    const node = $("notice");
    node.replaceChildren();
    if (!text) {
      node.hidden = true;
      return;
    }
    node.className = `notice ${kind || ""}`;
    node.append(text);
    node.hidden = false;
  }

  function isTextField(node) {
    if (!node || node === document.body) return false;
    if (node.isContentEditable) return true;
    if (node.tagName === "TEXTAREA" || node.tagName === "SELECT") return true;
    if (node.tagName !== "INPUT") return false;
    return !["button", "submit", "reset", "checkbox", "radio"].includes(node.type);
  }

  // ------------------------------------------------------------------ rendering

  function render(list) {
    if (!list || typeof list.version !== "number") return;
    if (shown && list.version < shown.version) return; // an older answer overtaken by the stream
    if (dragging !== null) {
      deferred = list;
      return;
    }
    shown = list;
    renderCurrent(list);
    renderWaiting(list);
    renderControls(list);
    renderBudgets(list);
  }

  function renderCurrent(list) {
    const box = $("current");
    const current = list.current;
    box.replaceChildren();
    if (!current) {
      box.append(el("p", { class: "empty" }, "Nobody has the floor."));
      timer = null;
    } else {
      const meta = [current.delegation, speechLabel(current.speech_type), channelLabel(current.channel)]
        .filter(Boolean)
        .join(" · ");
      box.append(
        el("p", { class: "speaker-name", id: "current-name" }, current.name),
        el("p", { class: "speaker-meta" }, meta, " ", where(current)),
      );
      const remaining =
        typeof current.remaining_seconds === "number" ? current.remaining_seconds : current.allotted_seconds;
      timer = { remaining, running: current.state === "speaking", at: performance.now() };
    }
    tick();
  }

  function renderWaiting(list) {
    const body = $("waiting");
    const focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("#waiting tr[data-id]")
      : null;
    const focusId = keepFocus !== null ? keepFocus : focused ? Number(focused.dataset.id) : null;
    keepFocus = null;
    const rows = list.waiting.map((s) =>
      el(
        "tr",
        { tabindex: 0, draggable: "true", "data-id": s.id, "aria-label": `${s.position}. ${s.name}` },
        el("td", { class: "pos" }, String(s.position)),
        el("td", { class: "name" }, s.name),
        el("td", {}, s.delegation),
        el("td", {}, speechLabel(s.speech_type)),
        el("td", {}, where(s)),
        el("td", {}, channelLabel(s.channel)),
        el(
          "td",
          { class: "row-actions" },
          el("button", { type: "button", "data-act": "start", "aria-label": `Start ${s.name}` }, "Start"),
          el("button", { type: "button", "data-act": "remove", "aria-label": `Remove ${s.name}` }, "Remove"),
        ),
      ),
    );
    body.replaceChildren(...rows);
    $("waiting-empty").hidden = rows.length > 0;
    $("count").textContent = `(${rows.length})`;
    if (focusId !== null) {
      const row = body.querySelector(`tr[data-id="${Number(focusId)}"]`);
      if (row) row.focus();
    }
  }

  function renderControls(list) {
    const current = list.current;
    $("btn-next").disabled = !list.waiting.length && !current;
    $("btn-end").disabled = !current;
    const pause = $("btn-pause");
    pause.disabled = !current;
    pause.textContent = current && current.state === "paused" ? "Resume" : "Pause";
    $("btn-readd").disabled = !list.finished || !list.finished.length;
    $("btn-close").textContent = list.closed ? "Reopen list" : "Close list";
    const state = $("list-state");
    state.textContent = list.closed
      ? "The list is closed: only points of order can be added."
      : "The list is open.";
    state.className = list.closed ? "list-state closed" : "list-state";
    const seconds = $("time-seconds");
    if (document.activeElement !== seconds) seconds.value = String(list.seconds_per_speaker);
  }

  function renderBudgets(list) {
    const box = $("budgets");
    const items = Object.entries(list.budgets || {}).map(([delegation, seconds]) =>
      el(
        "li",
        {},
        `${delegation}: ${clock(seconds)}`,
        el(
          "button",
          { type: "button", "data-delegation": delegation, "aria-label": `Remove the budget of ${delegation}` },
          "Remove",
        ),
      ),
    );
    if (!items.length) items.push(el("li", { class: "empty" }, "No budgets: every speaker gets the time per speaker."));
    box.replaceChildren(...items);
  }

  function tick() {
    const value = $("timer");
    const box = value.parentElement;
    const note = $("timer-note");
    if (!timer) {
      value.textContent = "–";
      note.textContent = "";
      box.className = "timer idle";
      return;
    }
    const left = timer.remaining - (timer.running ? (performance.now() - timer.at) / 1000 : 0);
    value.textContent = clock(left);
    note.textContent = timer.running ? (left < 0 ? "over time" : "") : "paused";
    box.className = "timer";
    if (left < WARNING_SECONDS) box.classList.add("warn");
    if (left < 0) box.classList.add("over");
    if (!timer.running) box.classList.add("paused");
  }

  // ------------------------------------------------------------------ talking to the server

  async function reload() {
    try {
      const response = await fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const list = await response.json();
        shown = null; // show it even if a stale answer raced ahead
        render(list);
      }
    } catch (err) {
      status("Could not reach the server; retrying…", "warn");
    }
  }

  async function act(action, extra) {
    if (!shown || inFlight) return false;
    inFlight = true;
    root.setAttribute("aria-busy", "true");
    try {
      const body = Object.assign({ action, expected_version: shown.version }, extra || {});
      let response;
      try {
        response = await fetch(`${api}/actions`, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify(body),
        });
      } catch (err) {
        notice("Could not reach the server: nothing was changed. Check the connection and try again.");
        return false;
      }
      let data = null;
      try {
        data = await response.json();
      } catch (err) {
        data = null;
      }
      if (response.ok) {
        notice("");
        if (data && data.list) render(data.list);
        return true;
      }
      if (response.status === 409) {
        await reload();
        notice("The list changed; here it is now. Check it and repeat your action if it is still needed.", "warn");
        return false;
      }
      if (response.status === 401) {
        notice("Your sign-in has expired. Reload the page to sign in again; nothing was changed.");
        return false;
      }
      const message = data && data.error && data.error.message ? data.error.message : `${response.status} ${response.statusText}`;
      notice(`Not done: ${message}`);
      return false;
    } finally {
      inFlight = false;
      root.removeAttribute("aria-busy");
    }
  }

  function connect() {
    const events = new EventSource(`${api}/events`);
    events.addEventListener("open", () => status("Live: the list updates by itself.", "ok"));
    events.addEventListener("list", (event) => {
      status("Live: the list updates by itself.", "ok");
      try {
        render(JSON.parse(event.data));
      } catch (err) {
        status("An update could not be read; reload the page.", "warn");
      }
    });
    events.addEventListener("error", () => {
      if (events.readyState === EventSource.CLOSED) status("Live updates stopped: reload the page.", "warn");
      else status("Connection lost; reconnecting…", "warn");
    });
  }

  // ------------------------------------------------------------------ buttons, forms, keys

  $("btn-next").addEventListener("click", () => act("next"));
  $("btn-end").addEventListener("click", () => act("end"));
  $("btn-pause").addEventListener("click", () =>
    act(shown && shown.current && shown.current.state === "paused" ? "resume" : "pause"),
  );
  $("btn-readd").addEventListener("click", () => act("readd_last"));
  $("btn-close").addEventListener("click", () => act(shown && shown.closed ? "reopen" : "close"));

  $("form-time").addEventListener("submit", (event) => {
    event.preventDefault();
    act("set_time", { seconds: Number.parseInt($("time-seconds").value, 10) });
  });

  $("form-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const done = await act("add", {
      name: $("add-name").value,
      delegation: $("add-delegation").value,
      speech_type: $("add-type").value,
      remote: false,
    });
    if (done) form.reset();
  });

  $("form-budget").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const done = await act("set_budget", {
      delegation: $("budget-delegation").value,
      seconds: Number.parseInt($("budget-seconds").value, 10),
    });
    if (done) form.reset();
  });

  $("budgets").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-delegation]");
    if (button) act("set_budget", { delegation: button.dataset.delegation, seconds: null });
  });

  const waiting = $("waiting");

  waiting.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-act]");
    const row = event.target.closest("tr[data-id]");
    if (button && row) act(button.dataset.act, { speaker_id: Number(row.dataset.id) });
  });

  waiting.addEventListener("keydown", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (!row || !shown || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    if (event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    const id = Number(row.dataset.id);
    const up = event.key === "ArrowUp";
    if (!event.altKey) {
      // Plain arrows walk the list; Alt+arrows move the focused speaker.
      const next = up ? row.previousElementSibling : row.nextElementSibling;
      if (next) next.focus();
      return;
    }
    const speaker = shown.waiting.find((s) => s.id === id);
    if (!speaker) return;
    const position = speaker.position + (up ? -1 : 1);
    if (position < 1 || position > shown.waiting.length) return;
    keepFocus = id;
    act("move", { speaker_id: id, position }).then((done) => {
      if (!done) keepFocus = null;
    });
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "n" && event.key !== "N") return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (isTextField(document.activeElement)) return;
    event.preventDefault();
    act("next");
  });

  function clearDropMarks() {
    for (const row of waiting.querySelectorAll(".drop-target, .dragging")) row.classList.remove("drop-target", "dragging");
  }

  waiting.addEventListener("dragstart", (event) => {
    const row = event.target.closest && event.target.closest("tr[data-id]");
    if (!row) return;
    dragging = Number(row.dataset.id);
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", row.dataset.id);
    row.classList.add("dragging");
  });

  waiting.addEventListener("dragover", (event) => {
    const row = event.target.closest && event.target.closest("tr[data-id]");
    if (dragging === null || !row) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    for (const other of waiting.querySelectorAll(".drop-target")) if (other !== row) other.classList.remove("drop-target");
    if (Number(row.dataset.id) !== dragging) row.classList.add("drop-target");
  });

  waiting.addEventListener("drop", (event) => {
    const row = event.target.closest && event.target.closest("tr[data-id]");
    if (dragging === null || !row) return;
    event.preventDefault();
    const id = dragging;
    const target = shown ? shown.waiting.find((s) => s.id === Number(row.dataset.id)) : null;
    finishDrag();
    if (target && target.id !== id) act("move", { speaker_id: id, position: target.position });
  });

  function finishDrag() {
    dragging = null;
    clearDropMarks();
    if (deferred) {
      const list = deferred;
      deferred = null;
      render(list);
    }
  }

  waiting.addEventListener("dragend", finishDrag);

  // ------------------------------------------------------------------ speaking-slot requests

  function safeUrl(raw) {
    try {
      const url = new URL(raw, window.location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (err) {
      return null;
    }
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return { status: response.status, data: null };
    return { status: response.status, data: await response.json() };
  }

  function requestsTable(data) {
    const byRef = new Map((data.requests || []).map((r) => [r.ref, r]));
    const pending = (data.draft_order || []).map((ref) => byRef.get(ref)).filter(Boolean);
    const counts = Object.entries(data.counts || {})
      .filter(([, n]) => n > 0)
      .map(([state, n]) => `${n} ${state}`)
      .join(", ");
    const parts = [el("p", { class: "hint" }, counts ? `Requests: ${counts}.` : "No requests yet.")];
    if (pending.length) {
      const rows = pending.map((r) =>
        el(
          "tr",
          {},
          el("td", {}, r.ref),
          el("td", {}, r.form.name),
          el("td", {}, r.form.delegation),
          el("td", {}, r.form.mode === "remote" ? "remote" : "in room"),
          el("td", {}, r.status),
        ),
      );
      const head = el(
        "tr",
        {},
        ...["Reference", "Name", "Delegation", "Where", "Status"].map((h) => el("th", { scope: "col" }, h)),
      );
      parts.push(
        el("p", {}, "Pending and waitlisted, in protocol order:"),
        el("table", { class: "slot-requests" }, el("thead", {}, head), el("tbody", {}, ...rows)),
      );
    }
    return parts;
  }

  async function loadSlots() {
    let calls;
    try {
      const { status: code, data } = await getJson(`${meetingApi}/slot-calls`);
      if (code === 404 || !data) return; // no speaking-slot service on this server
      calls = data.calls || [];
    } catch (err) {
      return;
    }
    const box = $("slot-calls");
    box.replaceChildren();
    $("slots").hidden = false;
    if (!calls.length) {
      box.append(el("p", { class: "empty" }, "No calls for speaking-slot requests in this meeting."));
      return;
    }
    for (const call of calls) {
      const link = safeUrl(call.form_url);
      const article = el(
        "article",
        { class: "slot-call" },
        el("h3", {}, call.title),
        el(
          "p",
          {},
          `Deadline ${String(call.deadline_local || call.deadline).replace("T", " ")} (${call.timezone}) · `,
          call.open ? "open" : "closed",
          ` · ${call.minutes} min per speaker`,
          link ? " · " : "",
          link ? el("a", { href: link }, "request form") : "",
        ),
      );
      box.append(article);
      if (role !== "secretariat") continue;
      try {
        const { status: code, data } = await getJson(
          `${meetingApi}/slot-calls/${encodeURIComponent(call.id)}/requests`,
        );
        if (data) article.append(...requestsTable(data));
        else article.append(el("p", { class: "hint" }, `The requests could not be loaded (${code}).`));
      } catch (err) {
        article.append(el("p", { class: "hint" }, "The requests could not be loaded."));
      }
    }
  }

  setInterval(tick, 250);
  connect();
  loadSlots();
})();
