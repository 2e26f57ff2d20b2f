// floorbridge public live list of speakers: read-only, follows the list over server-sent events,
// and lets a remote delegate ask for the floor (and withdraw) from the browser. The delegate is
// known by an HttpOnly cookie the first request sets; the stream then names their own request
// ("mine"), which keeps "you are number N" current. Text is only ever inserted with textContent.
"use strict";

(() => {
  const root = document.getElementById("live");
  if (!root) return;

  const api = `/api/v1/meetings/${encodeURIComponent(root.dataset.meeting)}/sessions/${encodeURIComponent(
    root.dataset.session,
  )}/speakers`;
  const $ = (id) => document.getElementById(id);
  const { el, speechLabel, where, setStatus, speechTimer } = window.floorbridge;
  const speechClock = speechTimer();


  let shown = null;
  let events = null;
  let mine = null; // this browser's open request, as the stream last told
  let note = ""; // what to say once there is no open request (withdrawn, spoken, removed)


  const status = (text, kind) => setStatus($("status"), text, kind);

  function askError(text) {
    const node = $("ask-error");
    node.textContent = text || "";
    node.hidden = !text;
  }

  // ------------------------------------------------------------------ rendering

  function render(list) {
    if (!list || typeof list.version !== "number") return;
    if (shown && list.version < shown.version) return;
    shown = list;
    const current = list.current;
    const box = $("current");
    box.replaceChildren();
    if (current) {
      const meta = [current.delegation, speechLabel(current.speech_type)].filter(Boolean).join(" · ");
      box.append(
        el("p", { class: "speaker-name", id: "current-name" }, current.name),
        el("p", { class: "speaker-meta" }, meta, " ", where(current)),
      );
    } else {
      box.append(el("p", { class: "empty" }, "Nobody has the floor."));
    }
    speechClock.follow(current);

    if ("mine" in list) {
      if (mine && !list.mine) {
        note = mine.state === "waiting" ? "Your request is no longer in the list." : "Your speech has ended.";
      }
      mine = list.mine;
    }
    const mineId = mine ? mine.id : null;
    const items = list.waiting.map((s) =>
      el(
        "li",
        { class: s.id === mineId ? "me" : null },
        el("span", { class: "pos" }, `${s.position}.`),
        el(
          "span",
          { class: "who" },
          s.name,
          el("span", {}, [s.delegation, speechLabel(s.speech_type)].filter(Boolean).join(" · ")),
        ),
        where(s),
      ),
    );
    $("waiting").replaceChildren(...items);
    $("waiting-empty").hidden = items.length > 0;
    $("count").textContent = `(${items.length})`;
    const state = $("list-state");
    state.textContent = list.closed ? "The list of speakers is closed: only points of order are taken." : "";
    state.className = list.closed ? "list-state closed" : "list-state";
    renderMine();
  }

  function renderMine() {
    const box = $("mine");
    const text = $("mine-text");
    const form = $("ask-form");
    const withdraw = $("withdraw");
    if (mine && (mine.state === "speaking" || mine.state === "paused")) {
      text.textContent = "You have the floor.";
      withdraw.hidden = true;
    } else if (mine && mine.state === "waiting") {
      text.textContent = `You are number ${mine.position} in the list of speakers.`;
      withdraw.hidden = false;
    } else {
      box.hidden = !note;
      form.hidden = false;
      withdraw.hidden = true;
      text.textContent = note;
      return;
    }
    box.hidden = false;
    form.hidden = true;
  }

  // ------------------------------------------------------------------ the stream

  function connect() {
    if (events) events.close();
    const stream = new EventSource(`${api}/events`);
    events = stream;
    stream.addEventListener("open", () => status("Live: the list updates by itself.", "ok"));
    stream.addEventListener("list", (event) => {
      status("Live: the list updates by itself.", "ok");
      try {
        render(JSON.parse(event.data));
      } catch (err) {
        status("An update could not be read; reload the page.", "warn");
      }
    });
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) status("Live updates stopped: reload the page.", "warn");
      else status("Connection lost; reconnecting…", "warn");
    });
  }

  function problemText(data, response) {
    const error = data && data.error;
    if (!error) return `${response.status} ${response.statusText}`;
    if (Array.isArray(error.problems) && error.problems.length) {
      return error.problems.map((p) => `${p.where}: ${p.what}`).join("; ");
    }
    return error.message;
  }

  // ------------------------------------------------------------------ asking and withdrawing

  $("ask-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    askError("");
    const button = event.currentTarget.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch(`${api}/requests`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({
          name: $("ask-name").value,
          delegation: $("ask-delegation").value,
          speech_type: $("ask-type").value,
          remote: true,
        }),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        askError(`Not added: ${problemText(data, response)}`);
        return;
      }
      note = "";
      mine = data.speaker;
      renderMine();
      // The stream was opened before this browser had its cookie: reopen it so it follows our request.
      connect();
    } catch (err) {
      askError("Could not reach the server: check the connection and try again.");
    } finally {
      button.disabled = false;
    }
  });

  $("withdraw").addEventListener("click", async () => {
    askError("");
    try {
      const response = await fetch(`${api}/requests/mine`, {
        method: "DELETE",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        askError(`Not withdrawn: ${problemText(data, response)}`);
        return;
      }
      mine = null;
      note = "You withdrew your request.";
      renderMine();
    } catch (err) {
      askError("Could not reach the server: check the connection and try again.");
    }
  });

  connect();
})();
