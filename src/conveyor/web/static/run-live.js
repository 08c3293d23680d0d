// Keeps a running run's page current: polls /runs/ID/live for the run's fields and the
// log lines added since the last one shown, and stops once the run has finished.
// Without this script the page still shows everything, with a reload link.
"use strict";

(function () {
  const main = document.getElementById("main");
  if (!main || main.dataset.finished === "true") {
    return;
  }
  const runId = main.dataset.runId;
  const pollMs = Number(main.dataset.pollMs) || 1000;
  const maxLines = Number(main.dataset.maxLines) || 500;
  let after = Number(main.dataset.after) || 0;
  const liveStatus = document.getElementById("live-status");
  const log = document.getElementById("log");
  const logEmpty = document.getElementById("log-empty");
  const templates = document.getElementById("status-templates");
  const stateText = { skipped: "skipped", pending: "not yet", current: "now", done: "" };

  function setText(field, text) {
    const element = main.querySelector('[data-field="' + field + '"]');
    if (element) {
      element.textContent = text;
    }
    return element;
  }

  function setCode(field, label, value) {
    const element = setText(field, label + " ");
    if (element) {
      const code = document.createElement("code");
      code.textContent = value;
      element.appendChild(code);
    }
  }

  function setTime(element, text, iso) {
    element.textContent = "";
    if (iso) {
      const time = document.createElement("time");
      time.dateTime = iso;
      time.textContent = text;
      element.appendChild(time);
    }
  }

  function showStatus(status) {
    const holder = main.querySelector('[data-field="status-badge"]');
    const badge = templates && templates.content.querySelector('[data-status="' + status + '"]');
    if (holder && badge && !holder.querySelector('[data-status="' + status + '"]')) {
      holder.replaceChildren(badge.cloneNode(true));
    }
  }

  function showRun(run, timeline) {
    showStatus(run.status);
    setCode("status-text", run.status_label, run.status);
    setCode("stage", run.stage_label, run.run_stage);
    setText("successful_operations", String(run.successful_operations));
    setText("failed_operations", String(run.failed_operations));
    setText("duration", run.finished ? run.duration : run.duration + " so far");
    const completed = main.querySelector('[data-field="completed_at"]');
    if (completed && run.finished) {
      setTime(completed, run.completed_at, run.completed_at);
    }
    for (const step of timeline) {
      const item = document.querySelector('#timeline [data-stage="' + step.stage + '"]');
      if (!item) {
        continue;
      }
      item.className = "step step-" + step.state;
      item.querySelector(".step-state").textContent = stateText[step.state] || "";
      setTime(item.querySelector(".step-time"), step.at, step.iso);
    }
  }

  function appendLines(messages) {
    for (const message of messages) {
      const line = document.createElement("li");
      line.className = "line level-" + message.level;
      line.dataset.id = String(message.id);
      const time = document.createElement("time");
      time.dateTime = message.iso;
      time.textContent = message.at;
      const level = document.createElement("span");
      level.className = "level";
      level.textContent = message.level;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = message.text;
      line.append(time, " ", level, " ", text);
      log.appendChild(line);
      after = message.id;
    }
    while (log.children.length > maxLines) {
      log.removeChild(log.firstElementChild);
    }
    if (messages.length && logEmpty) {
      logEmpty.hidden = true;
    }
  }

  function stop(text, withReload) {
    liveStatus.textContent = text + (withReload ? " " : "");
    if (withReload) {
      const link = document.createElement("a");
      link.href = "/runs/" + runId;
      link.textContent = "Reload";
      liveStatus.append(link, " to see its latest state.");
    }
  }

  async function poll() {
    let body;
    try {
      const response = await fetch("/runs/" + runId + "/live?after=" + after, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      const type = response.headers.get("content-type") || "";
      if (!response.ok || !type.startsWith("application/json")) {
        stop("Live updates stopped (signed out or the run is gone).", true);
        return;
      }
      body = await response.json();
    } catch (error) {
      // A network blip: try again on the next tick rather than giving up.
      window.setTimeout(poll, pollMs * 3);
      return;
    }
    appendLines(body.messages);
    showRun(body.run, body.timeline);
    if (body.more) {
      window.setTimeout(poll, 0);
    } else if (body.run.finished) {
      main.dataset.finished = "true";
      stop("This run has finished.", false);
    } else {
      window.setTimeout(poll, pollMs);
    }
  }

  liveStatus.textContent = "This run is in progress; this page updates live.";
  window.setTimeout(poll, pollMs);
})();
