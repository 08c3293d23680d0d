// Loaded by every page; each part only adds to a page that is complete without it.
// - Times: every <time datetime> is shown in the reader's zone, its UTC time on hover;
//   "Show times in UTC" (kept in this browser) shows UTC instead. Relative ages stay.
// - The automation form shows only the fields of the chosen type and trigger.
// - Copy buttons copy a field's text.
"use strict";

(function () {
  const STORE = "conveyor.times";
  const pad = (n) => String(n).padStart(2, "0");

  function utcText(date) {
    return (
      date.getUTCFullYear() + "-" + pad(date.getUTCMonth() + 1) + "-" + pad(date.getUTCDate()) +
      " " + pad(date.getUTCHours()) + ":" + pad(date.getUTCMinutes()) + ":" +
      pad(date.getUTCSeconds()) + " UTC"
    );
  }

  function zoneName(date) {
    try {
      const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
        .formatToParts(date)
        .find((p) => p.type === "timeZoneName");
      return part ? part.value : "";
    } catch (error) {
      return "";
    }
  }

  function localText(date) {
    return (
      date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " " +
      pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()) +
      " " + zoneName(date)
    ).trim();
  }

  function showUtc() {
    try {
      return window.localStorage.getItem(STORE) === "utc";
    } catch (error) {
      return false;
    }
  }

  // Rewrites the <time> elements under `root` (the live log calls it for new lines).
  function applyTimes(root) {
    const utc = showUtc();
    for (const element of (root || document).querySelectorAll("time[datetime]")) {
      const date = new Date(element.getAttribute("datetime"));
      if (Number.isNaN(date.getTime())) {
        continue;
      }
      const exact = utcText(date);
      if (element.dataset.relative === "true") {
        element.title = utc ? exact : localText(date) + " (" + exact + ")";
        continue;
      }
      element.textContent = utc ? exact : localText(date);
      element.title = utc ? "" : exact;
    }
  }

  function setUpZone() {
    const note = document.getElementById("zone-note");
    const toggle = document.getElementById("zone-toggle");
    if (!note || !toggle) {
      return;
    }
    const label = () => {
      const utc = showUtc();
      note.textContent = utc
        ? "Times are in UTC."
        : "Times are in your time zone (" + zoneName(new Date()) + "); hover one for UTC.";
      toggle.textContent = utc ? "Show times in my time zone" : "Show times in UTC";
    };
    toggle.hidden = false;
    toggle.addEventListener("click", () => {
      try {
        window.localStorage.setItem(STORE, showUtc() ? "local" : "utc");
      } catch (error) {
        return;
      }
      applyTimes(document);
      label();
    });
    label();
  }

  function setUpForm() {
    const form = document.getElementById("automation-form");
    if (!form) {
      return;
    }
    const type = form.querySelector('select[name="automation"]');
    const trigger = form.querySelector('select[name="trigger"]');
    const update = () => {
      for (const section of form.querySelectorAll("[data-types]")) {
        section.hidden = !section.dataset.types.split(" ").includes(type.value);
      }
      for (const section of form.querySelectorAll("[data-triggers]")) {
        section.hidden = !section.dataset.triggers.split(" ").includes(trigger.value);
      }
    };
    type.addEventListener("change", update);
    trigger.addEventListener("change", update);
    update();
    // A field the server refused is shown even if its section would be hidden.
    const invalid = form.querySelector('[aria-invalid="true"]');
    if (invalid) {
      const section = invalid.closest("[hidden]");
      if (section) {
        section.hidden = false;
      }
      if (invalid.focus) {
        invalid.focus();
      }
    }
  }

  function setUpCopy() {
    for (const button of document.querySelectorAll("button[data-copy]")) {
      const field = document.getElementById(button.dataset.copy);
      const status = document.querySelector('[data-copy-status="' + button.dataset.copy + '"]');
      if (!field) {
        continue;
      }
      button.hidden = false;
      button.addEventListener("click", async () => {
        let done = false;
        try {
          await navigator.clipboard.writeText(field.value);
          done = true;
        } catch (error) {
          field.select();
          done = document.execCommand && document.execCommand("copy");
        }
        if (status) {
          status.textContent = done ? "Copied." : "Select the URL and copy it.";
        }
      });
    }
  }

  window.conveyorTimes = applyTimes;
  document.addEventListener("DOMContentLoaded", () => {
    applyTimes(document);
    setUpZone();
    setUpForm();
    setUpCopy();
  });
})();
