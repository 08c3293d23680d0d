// The run page's log and, while the run is not finished, its live updates: polls
// /runs/ID/live for the run's fields and the log lines added since the last one shown,
// and stops once the run has finished. The log follows new lines while the reader is
// at its bottom; scrolled up, it stays put and "Jump to latest" appears. Lines that
// arrive live are shown only when they pass the page's level and search filters.
// Without this script the page still shows everything, with a reload link.
"use strict";

(function () {
  const main = document.getElementById("main");
  const log = document.getElementById("log");
  if (!main || !log) {
    return;
  }
  const jump = document.getElementById("jump-latest");
  const atTail = main.dataset.atTail === "true";
  const wantLevel = main.dataset.level || "";
  const wantText = (main.dataset.search || "").toLowerCase();
  let following = true;

  const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 8;
  const toBottom = () => {
    log.scrollTop = log.scrollHeight;
  };
  log.addEventListener("scroll", () => {
    following = atBottom();
    if (following && jump) {
      jump.hidden = true;
    }
  });
  if (jump) {
    jump.addEventListener("click", () => {
      following = true;
      jump.hidden = true;
      toBottom();
      log.focus();
    });
  }
  if (atTail) {
    toBottom();
  }
  if (main.dataset.finished === "true") {
    return;
  }
  const runId = main.dataset.runId;
  const pollMs = Number(main.dataset.pollMs) || 1000;
  const maxLines = Number(main.dataset.maxLines) || 500;
  let after = main.dataset.after || "0"; // a log line's cursor (store/run_log.py)
  const liveStatus = document.getElementById("live-status");
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

  // A finished run offers Rerun instead of Cancel, as the page rendered for it does.
  function showActions() {
    const holder = main.querySelector('[data-field="actions"]');
    const finished = document.getElementById("finished-actions");
    if (holder && finished) {
      holder.replaceChildren(finished.content.cloneNode(true));
    }
  }

  function showRun(run, timeline) {
    showStatus(run.status);
    if (run.finished) {
      showActions();
    }
    setCode("status-text", run.status_label, run.status);
    setCode("stage", run.stage_label, run.run_stage);
    setText("successful_operations", String(run.successful_operations));
    setText("failed_operations", String(run.failed_operations));
    setText("duration", run.finished ? run.duration : run.duration + " so far");
    const completed = main.querySelector('[data-field="completed_at"]');
    if (completed && run.finished) {
      setTime(completed, run.completed_at, run.completed_iso);
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
    if (window.conveyorTimes) {
      window.conveyorTimes(main.querySelector(".columns"));
    }
  }

  const matches = (message) =>
    (!wantLevel || message.level === wantLevel) &&
    (!wantText || message.text.toLowerCase().includes(wantText));

  function appendLines(messages) {
    const added = [];
    for (const message of messages) {
      after = message.id;
      if (!matches(message)) {
        continue;
      }
      const line = document.createElement("li");
      line.className = "line level-" + message.level;
      line.dataset.id = String(message.id);
      line.dataset.level = message.level;
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
      added.push(line);
    }
    if (!added.length) {
      return;
    }
    const fragment = document.createDocumentFragment();
    fragment.append(...added);
    log.appendChild(fragment);
    if (window.conveyorTimes) {
      for (const line of added) {
        window.conveyorTimes(line);
      }
    }
    // Keep at most maxLines; when the reader is scrolled up, keep what they look at in place.
    const before = log.scrollHeight;
    while (log.children.length > maxLines) {
      log.removeChild(log.firstElementChild);
    }
    if (!following) {
      log.scrollTop -= before - log.scrollHeight;
    }
    if (logEmpty) {
      logEmpty.hidden = true;
    }
    if (following) {
      toBottom();
    } else if (jump) {
      jump.hidden = false;
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
      const query = atTail ? "after=" + after : "log=none";
      const response = await fetch("/runs/" + runId + "/live?" + query, {
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
