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

  return { SPEECH, el, clock, speechLabel, where, setStatus, WARNING_SECONDS: 30 };
})();
