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
  const { el, clock, speechLabel, where, setStatus, speechTimer } = window.floorbridge;
  const speechClock = speechTimer();

  const CHANNEL = { room: "in the room", web: "web", telegram: "Telegram", discord: "Discord", matrix: "Matrix" };

  let shown = null; // the list last rendered
  let inFlight = false; // one action at a time
  let dragging = null; // id of the row being dragged
  let deferred = null; // a list that arrived during a drag, rendered when the drag ends
  let keepFocus = null; // the row to focus after the next render (keyboard moves)

  // ------------------------------------------------------------------ small helpers

  const channelLabel = (channel) => CHANNEL[channel] || channel;

  const status = (text, kind) => setStatus($("status"), text, kind);

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
    } else {
      const meta = [current.delegation, speechLabel(current.speech_type), channelLabel(current.channel)]
        .filter(Boolean)
        .join(" · ");
      box.append(
        el("p", { class: "speaker-name", id: "current-name" }, current.name),
        el("p", { class: "speaker-meta" }, meta, " ", where(current)),
      );
    }
    speechClock.follow(current);
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

  // The secretariat reviews pending and waitlisted requests from the table: approve (with the
  // session, order, start and minutes proposed), waitlist, or reject (with a reason). Every review
  // names the request's updated_at as read, so a 409 means someone else decided first.

  const STATUS_LABEL = {
    pending: "pending",
    waitlisted: "waitlisted",
    approved: "approved",
    rejected: "rejected",
    withdrawn: "withdrawn",
  };
  const STATUS_RANK = { pending: 0, waitlisted: 0, approved: 1, rejected: 2, withdrawn: 3 };
  let reviewIds = 0; // unique ids for the labels of review forms

  // Minutes east of UTC of `timeZone` at `date` (0 if the browser does not know the zone).
  function zoneOffset(date, timeZone) {
    try {
      const parts = new Intl.DateTimeFormat("en-GB", {
        timeZone,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      }).formatToParts(date);
      const get = (type) => Number((parts.find((p) => p.type === type) || { value: "0" }).value);
      const wall = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour") % 24, get("minute"), get("second"));
      return Math.round((wall - Math.floor(date.getTime() / 1000) * 1000) / 60000);
    } catch (err) {
      return 0;
    }
  }

  // An instant as the value of a datetime-local field, in the meeting's time zone.
  function localValue(iso, timeZone) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    return new Date(date.getTime() + zoneOffset(date, timeZone) * 60000).toISOString().slice(0, 16);
  }

  // A datetime-local value in the meeting's time zone as ISO 8601 with its UTC offset.
  function withOffset(value, timeZone) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
    if (!m) return value || "";
    const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
    let offset = zoneOffset(new Date(wall), timeZone);
    offset = zoneOffset(new Date(wall - offset * 60000), timeZone);
    const abs = Math.abs(offset);
    const sign = offset < 0 ? "-" : "+";
    return `${m[0]}:00${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  }

  function hhmm(iso, timeZone) {
    const value = localValue(iso, timeZone);
    return value ? value.slice(11, 16) : "";
  }

  // The next free place in a session: after the last approved slot (order and time).
  function proposal(data, sessionId) {
    const session = (data.call.sessions || []).find((s) => s.id === sessionId);
    let order = 1;
    let start = session && session.start ? new Date(session.start).getTime() : null;
    for (const r of data.requests || []) {
      const slot = r.slot;
      if (r.status !== "approved" || !slot || slot.session !== sessionId) continue;
      order = Math.max(order, (slot.order || 0) + 1);
      if (slot.start) {
        const end = new Date(slot.start).getTime() + (slot.minutes || 0) * 60000;
        if (start === null || end > start) start = end;
      }
    }
    return { order, start: start === null ? "" : new Date(start).toISOString() };
  }

  function sessionTitle(data, sessionId) {
    const session = (data.call.sessions || []).find((s) => s.id === sessionId);
    return session ? session.title : sessionId;
  }

  function statusText(data, r) {
    const label = STATUS_LABEL[r.status] || r.status;
    if (r.status === "approved" && r.slot) {
      const at = r.slot.start ? ` at ${hhmm(r.slot.start, data.call.timezone)}` : "";
      return `${label}: ${sessionTitle(data, r.slot.session)}, no. ${r.slot.order}${at} (${r.slot.minutes} min)`;
    }
    if (r.status === "rejected" && r.reason) return `${label}: ${r.reason}`;
    return label;
  }

  function problemText(response, body) {
    const error = body && body.error;
    if (error && Array.isArray(error.problems) && error.problems.length) {
      return error.problems.map((p) => (p.where ? `${p.where}: ${p.what}` : p.what)).join("; ");
    }
    if (error && error.message) return error.message;
    return `${response.status} ${response.statusText}`;
  }

  // One call's requests: loads them, renders the table and handles the reviews.
  function slotRequests(call, box, live) {
    let data = null;
    let busy = false;
    let open = null; // {ref, row, trigger}: the review form shown under a row

    async function refresh() {
      let result;
      try {
        result = await getJson(`${meetingApi}/slot-calls/${encodeURIComponent(call.id)}/requests`);
      } catch (err) {
        box.replaceChildren(el("p", { class: "hint" }, "The requests could not be loaded."));
        return;
      }
      if (!result.data) {
        box.replaceChildren(el("p", { class: "hint" }, `The requests could not be loaded (${result.status}).`));
        return;
      }
      data = result.data;
      open = null;
      render();
    }

    function render() {
      const requests = data.requests || [];
      const byRef = new Map(requests.map((r) => [r.ref, r]));
      const drafted = (data.draft_order || []).map((ref) => byRef.get(ref)).filter(Boolean);
      const inDraft = new Set(drafted.map((r) => r.ref));
      const decided = requests
        .filter((r) => !inDraft.has(r.ref))
        .sort((a, b) => {
          const rank = (STATUS_RANK[a.status] ?? 9) - (STATUS_RANK[b.status] ?? 9);
          if (rank) return rank;
          const sa = a.slot ? `${a.slot.session}\u0000${String(a.slot.order).padStart(6, "0")}` : "";
          const sb = b.slot ? `${b.slot.session}\u0000${String(b.slot.order).padStart(6, "0")}` : "";
          return sa < sb ? -1 : sa > sb ? 1 : a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0;
        });
      const counts = Object.entries(data.counts || {})
        .filter(([, n]) => n > 0)
        .map(([state, n]) => `${n} ${state}`)
        .join(", ");
      const parts = [el("p", { class: "hint" }, counts ? `Requests: ${counts}.` : "No requests yet.")];
      const shownRequests = drafted.concat(decided);
      if (shownRequests.length) {
        const head = el(
          "tr",
          {},
          ...["Reference", "Name", "Delegation", "Where", "Session asked for", "Status"].map((h) =>
            el("th", { scope: "col" }, h),
          ),
          el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Review")),
        );
        parts.push(
          el(
            "p",
            {},
            drafted.length
              ? "Pending and waitlisted requests first, in protocol order; then the decided ones."
              : "Every request has been decided.",
          ),
          el(
            "table",
            { class: "slot-requests" },
            el("thead", {}, head),
            el("tbody", {}, ...shownRequests.map((r) => requestRow(r, inDraft.has(r.ref)))),
          ),
        );
      }
      box.replaceChildren(...parts);
    }

    function requestRow(r, reviewable) {
      const row = el(
        "tr",
        { "data-ref": r.ref, class: `slot-${r.status}` },
        el("td", {}, r.ref),
        el("td", {}, r.form.name),
        el("td", {}, r.form.delegation),
        el("td", {}, r.form.mode === "remote" ? "remote" : "in room"),
        el("td", {}, sessionTitle(data, r.form.session)),
        el("td", { class: "slot-status" }, statusText(data, r)),
      );
      const cell = el("td", { class: "row-actions review" });
      row.append(cell);
      if (!reviewable) return row;
      const message = el("p", { class: "error review-error", role: "alert", hidden: true });
      const approve = el("button", { type: "button", "aria-label": `Approve ${r.form.name}` }, "Approve…");
      approve.addEventListener("click", () => openForm(r, row, approve, "approve"));
      cell.append(approve);
      if (r.status !== "waitlisted") {
        const waitlist = el("button", { type: "button", "aria-label": `Waitlist ${r.form.name}` }, "Waitlist");
        waitlist.addEventListener("click", () => send(r, row, { decision: "waitlisted" }));
        cell.append(waitlist);
      }
      const reject = el("button", { type: "button", "aria-label": `Reject ${r.form.name}` }, "Reject…");
      reject.addEventListener("click", () => openForm(r, row, reject, "reject"));
      cell.append(reject, message);
      return row;
    }

    function closeForm(returnFocus) {
      if (!open) return;
      const { formRow, trigger } = open;
      open = null;
      formRow.remove();
      if (returnFocus && trigger.isConnected) trigger.focus();
    }

    function field(labelText, control) {
      const id = `review-${++reviewIds}`;
      control.id = id;
      return el("div", { class: "field" }, el("label", { for: id }, labelText), control);
    }

    function openForm(r, row, trigger, kind) {
      closeForm(false);
      const timeZone = data.call.timezone;
      const form = el("form", { class: "review-form", novalidate: kind === "approve" ? true : null });
      const legendText = kind === "approve" ? `Approve ${r.ref}: ${r.form.name}` : `Reject ${r.ref}: ${r.form.name}`;
      const fieldset = el("fieldset", {}, el("legend", {}, legendText));
      let first;
      if (kind === "approve") {
        const session = el(
          "select",
          { name: "session" },
          ...(data.call.sessions || []).map((s) =>
            el("option", { value: s.id, selected: s.id === r.form.session ? true : null }, s.title),
          ),
        );
        const order = el("input", { name: "order", type: "number", min: 1, max: 10000, step: 1, required: true });
        const start = el("input", { name: "start", type: "datetime-local", required: true });
        const minutes = el("input", {
          name: "minutes",
          type: "number",
          min: 1,
          max: 60,
          step: 1,
          required: true,
          value: data.call.minutes,
        });
        const propose = () => {
          const next = proposal(data, session.value);
          order.value = String(next.order);
          start.value = next.start ? localValue(next.start, timeZone) : "";
        };
        session.addEventListener("change", propose);
        propose();
        fieldset.append(
          field("Session", session),
          field("Order", order),
          field(`Start (${timeZone})`, start),
          field("Minutes", minutes),
          el("button", { type: "submit", class: "primary" }, "Confirm approval"),
        );
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          const body = { decision: "approved", session: session.value, start: withOffset(start.value, timeZone) };
          const orderValue = Number.parseInt(order.value, 10);
          const minutesValue = Number.parseInt(minutes.value, 10);
          if (!Number.isNaN(orderValue)) body.order = orderValue;
          if (!Number.isNaN(minutesValue)) body.minutes = minutesValue;
          send(r, row, body);
        });
        first = session;
      } else {
        const reason = el("input", { name: "reason", type: "text", required: true, maxlength: 500 });
        fieldset.append(
          field("Reason (the delegate is told)", reason),
          el("button", { type: "submit", class: "primary" }, "Confirm rejection"),
        );
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          if (!reason.value.trim()) {
            showError(row, "A rejection needs a reason.");
            reason.focus();
            return;
          }
          send(r, row, { decision: "rejected", reason: reason.value });
        });
        first = reason;
      }
      const cancel = el("button", { type: "button" }, "Cancel");
      cancel.addEventListener("click", () => closeForm(true));
      fieldset.append(cancel);
      form.append(fieldset);
      const formRow = el(
        "tr",
        { class: "review-row" },
        el("td", { colspan: row.children.length }, form),
      );
      row.after(formRow);
      open = { ref: r.ref, formRow, trigger };
      showError(row, "");
      first.focus();
    }

    function showError(row, text) {
      const message = row.querySelector(".review-error");
      if (!message) return;
      message.textContent = text;
      message.hidden = !text;
    }

    function setBusy(row, value) {
      busy = value;
      box.setAttribute("aria-busy", value ? "true" : "false");
      const controls = [...row.querySelectorAll("button")];
      if (open) controls.push(...open.formRow.querySelectorAll("button"));
      for (const button of controls) button.disabled = value;
    }

    async function send(r, row, body) {
      if (busy) return;
      setBusy(row, true);
      showError(row, "");
      if (r.updated_at) body.expected_updated_at = r.updated_at;
      let response;
      let answer = null;
      try {
        response = await fetch(`${meetingApi}/slot-requests/${encodeURIComponent(r.ref)}/review`, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify(body),
        });
        try {
          answer = await response.json();
        } catch (err) {
          answer = null;
        }
      } catch (err) {
        setBusy(row, false);
        showError(row, "Could not reach the server: nothing was changed. Check the connection and try again.");
        return;
      }
      if (response.ok) {
        const status = answer && answer.status ? answer.status : body.decision;
        await refresh();
        live.className = "hint";
        live.textContent = `${r.ref} (${r.form.name}) is now ${STATUS_LABEL[status] || status}.`;
        busy = false;
        box.setAttribute("aria-busy", "false");
        live.focus(); // the buttons that had the focus are gone with the old table
        return;
      }
      if (response.status === 409) {
        await refresh();
        busy = false;
        box.setAttribute("aria-busy", "false");
        live.className = "notice warn";
        live.textContent =
          `${r.ref} was changed by someone else meanwhile; the table shows it as it is now. ` +
          "Check it and decide again if still needed.";
        return;
      }
      setBusy(row, false);
      if (response.status === 401) {
        showError(row, "Your sign-in has expired. Reload the page to sign in again; nothing was changed.");
        return;
      }
      showError(row, `Not done: ${problemText(response, answer)}`);
    }

    return refresh;
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
      const requests = el("div", { class: "slot-requests-box" });
      const live = el("p", { class: "hint", role: "status", tabindex: -1 });
      article.append(live, requests);
      await slotRequests(call, requests, live)();
    }
  }

  connect();
  loadSlots();
})();
