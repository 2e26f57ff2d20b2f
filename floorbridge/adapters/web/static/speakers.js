// floorbridge: what the console (console.js) and the public live page (live.js) share: building
// elements from text (never HTML), the timer's m:ss, speech-type names and the remote/in-room tag.
"use strict";

window.floorbridge = (() => {
  const SPEECH = {
    contribution: "Contribution",
    point_of_order: "Point of order",
    interposed_question: "Interposed question",
    answer: "Answer",
    right_of_reply: "Right of reply",
  };

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

  function where(speaker) {
    return el("span", { class: speaker.remote ? "tag remote" : "tag room" }, speaker.remote ? "remote" : "in room");
  }

  function setStatus(node, text, kind) {
    node.textContent = text;
    node.className = `status ${kind || ""}`;
  }

  const WARNING_SECONDS = 30;

  // The current speech's clock in #timer and #timer-note: `follow` takes the list's current speaker
  // (or null) after every change; between changes it counts down locally, four times a second.
  function speechTimer() {
    let timer = null; // {remaining, running, at}: time left at `at` (performance.now())

    function tick() {
      const value = document.getElementById("timer");
      const box = value.parentElement;
      const note = document.getElementById("timer-note");
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

    function follow(current) {
      if (current) {
        const remaining =
          typeof current.remaining_seconds === "number" ? current.remaining_seconds : current.allotted_seconds;
        timer = { remaining, running: current.state === "speaking", at: performance.now() };
      } else {
        timer = null;
      }
      tick();
    }

    setInterval(tick, 250);
    return { follow };
  }

  return { SPEECH, el, clock, speechLabel, where, setStatus, speechTimer };
})();
