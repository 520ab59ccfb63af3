// The classroom panel: a lecture video in, the recognised students out; the student list.
"use strict";

(() => {
  const { el, api, upload, poll, errorMessage } = IRaaS;
  const $ = (id) => document.getElementById(id);

  /** Rows of a CSV text (RFC 4180 quoting), without the trailing empty line. */
  function parseCsv(text) {
    const rows = [];
    let row = [];
    let field = "";
    let quoted = false;
    for (let i = 0; i < text.length; i += 1) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; }
        else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { row.push(field); field = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i += 1;
        row.push(field); rows.push(row); row = []; field = "";
      } else field += c;
    }
    if (field || row.length) { row.push(field); rows.push(row); }
    return rows;
  }

  function table(rows, caption) {
    const [head, ...body] = rows;
    return el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        {},
        el("caption", { text: caption }),
        el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, ...body.map((r) => el("tr", {}, ...r.map((v) => el("td", { text: v }))))),
      ),
    );
  }

  // ---- the video -------------------------------------------------------------------------

  const videoForm = $("video-form");
  const videoStatus = $("video-status");
  const videoResult = $("video-result");

  videoForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("video").files[0];
    if (!file) return;
    const button = videoForm.querySelector("button");
    button.disabled = true;
    videoResult.replaceChildren();
    const run = Attendance.reset(); // a newer upload stops following the previous one
    try {
      const sent = await upload(
        `v1/videos?name=${encodeURIComponent(file.name)}`,
        file,
        file.type || "video/mp4",
        (done) => { videoStatus.textContent = done < 1 ? `Uploading ${Math.round(100 * done)}%…` : "Recognising the students…"; },
      );
      if (!sent.ok) {
        videoStatus.textContent = `Error: ${errorMessage(sent.body, sent.status)}`;
        return;
      }
      // The video's id is the service's (only this key's holder can read its CSV); the CSV
      // downloads under the name of the user's file (sent.body.csv: lecture.mp4 -> lecture.csv).
      const csvPath = `v1/videos/${encodeURIComponent(sent.body.video)}/csv`;
      const csv = await poll(async () => {
        const r = await api(csvPath);
        return r.status === 404 ? undefined : r;
      }, { timeoutMs: 600000 });
      if (!csv || !csv.ok) {
        videoStatus.textContent = `Error: ${csv ? errorMessage(csv.body, csv.status) : "no CSV after 10 minutes"}`;
        return;
      }
      const rows = parseCsv(csv.body);
      const found = Math.max(0, rows.length - 1);
      videoStatus.textContent = `${found} student${found === 1 ? "" : "s"} recognised in ${file.name}.`;
      if (rows.length) videoResult.append(table(rows, `Students in ${file.name}`));
      videoResult.append(el("p", {}, IRaaS.downloadLink(csvPath, sent.body.csv, csv.body, "Download the CSV")));
      // The first frame's answer is in; the whole lecture's comes later (the button is free again).
      Attendance.follow(run, sent.body, file.name);
    } finally {
      button.disabled = false;
    }
  });

  // ---- the students ----------------------------------------------------------------------

  const studentsBody = $("students").querySelector("tbody");
  const studentsStatus = $("students-status");
  let enrolledNames = new Set(); // the names in the list, as last read (an unknown face's new name must be new)

  /** Enrol a face of `name` from one photo (a File or Blob) through the face function:
   * resolves to {enrolled, message}, the message what went wrong when it was not. */
  async function enrolPhoto(name, photo, type) {
    const path = `v1/students/${encodeURIComponent(name)}/photos`;
    const sent = await upload(path, photo, type || "application/octet-stream", () => {});
    if (!sent.ok) return { enrolled: false, message: errorMessage(sent.body, sent.status) };
    const outcome = await poll(async () => {
      const r = await api(`v1/enrolments/${encodeURIComponent(sent.body.enrolment)}`);
      return r.status === 202 ? undefined : r;
    });
    if (!outcome) return { enrolled: false, message: "no answer from the face function yet" };
    if (outcome.ok && outcome.body.status === "enrolled") return { enrolled: true, message: "" };
    const reason = outcome.body && outcome.body.error; // the face function's words, or the API's error body
    return { enrolled: false, message: typeof reason === "string" ? reason : errorMessage(outcome.body, outcome.status) };
  }

  async function enrol(student, input) {
    const files = [...input.files];
    input.value = "";
    for (const file of files) {
      studentsStatus.textContent = `Enrolling ${file.name} for ${student.name}…`;
      const outcome = await enrolPhoto(student.name, file, file.type);
      studentsStatus.textContent = outcome.enrolled
        ? `Enrolled a face of ${student.name} from ${file.name}.`
        : `${file.name}: not enrolled: ${outcome.message}`;
    }
    await loadStudents();
  }

  function studentRow(s) {
    const inputId = `photos-${(studentRow.count = (studentRow.count || 0) + 1)}`;
    const photos = el("input", { type: "file", accept: "image/*", multiple: true, class: "visually-hidden", id: inputId });
    photos.addEventListener("change", () => enrol(s, photos));
    const remove = el("button", {
      type: "button",
      class: "secondary",
      text: "Remove",
      "aria-label": `Remove ${s.name}`,
      onclick: async () => {
        if (!window.confirm(`Remove ${s.name} and their enrolled faces?`)) return;
        const r = await api(`v1/students/${encodeURIComponent(s.name)}`, { method: "DELETE" });
        studentsStatus.textContent = r.ok ? `Removed ${s.name}.` : `Error: ${errorMessage(r.body, r.status)}`;
        await loadStudents();
      },
    });
    const add = el("label", { class: "button secondary", for: inputId, text: "Add face photos" });
    add.setAttribute("aria-label", `Add face photos of ${s.name}`);
    return el(
      "tr",
      {},
      el("th", { scope: "row", text: s.name }),
      el("td", { text: s.id }),
      el("td", { text: s.major }),
      el("td", { text: s.year }),
      el("td", { text: String(s.faces ?? 0) }),
      el("td", { class: "actions" }, photos, add, remove),
    );
  }

  async function loadStudents() {
    const r = await api("v1/students");
    if (!r.ok) {
      studentsStatus.textContent = `Could not list the students: ${errorMessage(r.body, r.status)}`;
      return;
    }
    const students = Array.isArray(r.body) ? r.body : r.body.students || [];
    enrolledNames = new Set(students.map((s) => s.name));
    studentsBody.replaceChildren(...students.map(studentRow));
    if (!students.length) studentsBody.append(el("tr", {}, el("td", { colspan: 6, text: "No students yet." })));
  }

  $("student-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const record = Object.fromEntries(new FormData(form).entries());
    const r = await api("v1/students", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify([record]),
    });
    if (r.ok) {
      studentsStatus.textContent = `Added ${record.name}.`;
      form.reset();
      await loadStudents();
    } else {
      studentsStatus.textContent = `Error: ${errorMessage(r.body, r.status)}`;
    }
  });

  // ---- the whole lecture's attendance --------------------------------------------------------

  /**
   * After a lecture's first-frame CSV: follow GET v1/videos/{id}/attendance until the report is
   * written, then show it as a timeline (a row per person seen, their spans as bars across the
   * lecture), the absent students, and each unknown person's crop with a form to enrol them.
   *
   * The page's content security policy allows no style attribute, so a bar's place is set through
   * the CSSOM (element.style.setProperty of --from and --length, which the policy allows) and the
   * stylesheet turns them into left and width. Every bar's span is also written out as text.
   */
  const Attendance = (() => {
    const status = $("attendance-status");
    const box = $("attendance");
    const FOLLOW_MS = 20 * 60 * 1000; // a long lecture is processed in segments: give it time
    let current = 0; // the upload being followed; an older one's answer is dropped
    let urls = []; // blob: URLs of this report's crops and CSV, revoked with it

    function reset() {
      current += 1;
      for (const url of urls) URL.revokeObjectURL(url);
      urls = [];
      status.textContent = "";
      box.replaceChildren();
      return current;
    }

    /** 75.5 -> "1:15"; an hour or more -> "1:02:03" (whole seconds, rounded down). */
    function clock(seconds) {
      const t = Math.max(0, Math.floor(seconds + 1e-6));
      const h = Math.floor(t / 3600);
      const m = Math.floor((t % 3600) / 60);
      const ss = String(t % 60).padStart(2, "0");
      return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
    }

    /** How long someone was there: "45 s" under a minute, else minutes ("12.5 min", "75 min"). */
    function minutes(seconds) {
      if (seconds < 60) return `${Math.round(seconds)} s`;
      const m = seconds / 60;
      return `${m < 10 ? m.toFixed(1) : Math.round(m)} min`;
    }

    const span = ([from, to]) => `${clock(from)} to ${clock(to)}`;

    function spansText(spans) {
      if (!spans.length) return "";
      const parts = spans.map((s) => `from ${span(s)}`);
      const list = parts.length > 1 ? `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}` : parts[0];
      return `Seen ${list}`;
    }

    const share = (part, whole) => (whole > 0 ? Math.min(100, Math.max(0, (100 * part) / whole)) : 0);

    /** A track across the lecture with a bar per span (and the unreadable spans hatched). */
    function track(spans, duration, missing, kind) {
      const node = el("div", { class: "track", "aria-hidden": "true" });
      const place = (part, [from, to]) => {
        part.style.setProperty("--from", `${share(from, duration).toFixed(3)}%`);
        part.style.setProperty("--length", `${share(Math.max(0, to - from), duration).toFixed(3)}%`);
        return part;
      };
      for (const gap of missing) node.append(place(el("span", { class: "gap" }), gap));
      for (const seen of spans) node.append(place(el("span", { class: `bar ${kind}` }), seen));
      return node;
    }

    /** Up to about six ticks at a round step: 0:00, 0:05, 0:10, ... */
    function axis(duration) {
      const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
      const step = steps.find((s) => duration / s <= 6) || 14400;
      const node = el("div", { class: "axis", "aria-hidden": "true" });
      for (let t = 0; t <= duration + 1e-6; t += step) {
        const at = share(t, duration);
        const tick = el("span", { class: `tick${at < 8 ? " start" : at > 92 ? " end" : ""}`, text: clock(t) });
        tick.style.setProperty("--at", `${at.toFixed(3)}%`);
        node.append(tick);
      }
      return node;
    }

    function lane({ name, badge, facts, spans, duration, missing, kind, data }) {
      return el(
        "li",
        { class: `lane ${kind}`, ...data },
        el("div", { class: "who" }, el("p", { class: "name" }, el("span", { text: name }), badge), facts),
        el(
          "div",
          { class: "seen" },
          track(spans, duration, missing, kind),
          el("p", { class: "spans", text: spansText(spans) || "Not seen" }),
        ),
      );
    }

    function studentLane(s, duration, missing) {
      const facts = el(
        "p",
        { class: "facts" },
        "First seen ", el("span", { class: "first", text: clock(s.first_seen_s) }),
        ` · ${minutes(s.present_s)} present (${Math.round(100 * s.share)}%)`,
      );
      const badge = el("span", { class: `badge ${s.status}`, text: s.status });
      return lane({
        name: s.name, badge, facts, spans: s.spans || [], duration, missing,
        kind: s.status === "present" ? "present" : "partial",
        data: { "data-name": s.name, "data-first-seen": s.first_seen_s },
      });
    }

    // ---- the attendance CSV, built here from the report: the service writes <stem>.attendance.csv
    // to its output bucket, but no route serves it; the same header and rows, formula-safe.

    const CSV_HEADER = ["name", "id", "major", "year", "first_seen_s", "last_seen_s", "present_s", "share", "status"];
    const FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"];

    /** A number as Python writes a float (4 -> "4.0"), so the file reads as the service's does. */
    const number = (v) => (typeof v === "number" && Number.isInteger(v) ? v.toFixed(1) : String(v));

    function cell(value) {
      let text = typeof value === "number" ? number(value) : String(value ?? "");
      if (FORMULA_STARTS.some((c) => text.startsWith(c))) text = `'${text}`;
      text = text.replace(/\r\n?/g, "\n");
      return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
    }

    function csvText(report) {
      const rows = [CSV_HEADER, ...report.students.map((s) => CSV_HEADER.map((k) => s[k]))];
      return rows.map((row, i) => row.map((v) => (i ? cell(v) : v)).join(",")).join("\n") + "\n";
    }

    function csvLink(report, csvName) {
      const stem = (csvName || "lecture.csv").replace(/\.csv$/i, "");
      const url = URL.createObjectURL(new Blob([csvText(report)], { type: "text/csv" }));
      urls.push(url);
      return el("a", { href: url, download: `${stem}.attendance.csv`, text: "Download the attendance CSV" });
    }

    // ---- unknown faces -------------------------------------------------------------------------

    const FIELDS = [
      ["name", "Name", "Ada Lovelace"],
      ["id", "Student ID", "1815"],
      ["major", "Major", "Mathematics"],
      ["year", "Year", "Junior"],
    ];

    function unknownCard(person, n, videoPath, run) {
      const label = `Unknown person ${n + 1}`;
      const prefix = `unknown-${run}-${n}`;
      const picture = el("div", { class: "crop thumb-none", text: "?", role: "img", "aria-label": `${label}: loading the picture` });
      const said = el("p", { class: "status", role: "status", "aria-live": "polite", tabindex: "-1" });
      const toggle = el("button", {
        type: "button", class: "secondary", text: "Enrol as a student",
        "aria-expanded": "false", "aria-controls": `${prefix}-form`,
      });
      toggle.setAttribute("aria-label", `Enrol ${label} as a student`);
      let crop = null;

      const form = el(
        "form",
        { class: "form-grid enrol-unknown", id: `${prefix}-form`, hidden: true, "aria-label": `Enrol ${label} as a student` },
        ...FIELDS.flatMap(([field, text, hint]) => [
          el("label", { for: `${prefix}-${field}`, text }),
          el("input", { id: `${prefix}-${field}`, name: field, required: true, autocomplete: "off", placeholder: hint }),
        ]),
        el("button", { type: "submit", text: "Create and enrol" }),
      );
      toggle.addEventListener("click", () => {
        form.hidden = !form.hidden;
        toggle.setAttribute("aria-expanded", String(!form.hidden));
        if (!form.hidden) form.querySelector("input").focus();
      });
      form.addEventListener("keydown", (event) => {
        if (event.key !== "Escape") return;
        form.hidden = true;
        toggle.setAttribute("aria-expanded", "false");
        toggle.focus();
      });
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const record = Object.fromEntries([...new FormData(form).entries()].map(([k, v]) => [k, String(v).trim()]));
        if (FIELDS.some(([field]) => !record[field])) {
          said.textContent = "Fill in the name, ID, major and year.";
          return;
        }
        if (!crop) {
          said.textContent = "The picture of this face could not be read, so it cannot be enrolled.";
          return;
        }
        if (enrolledNames.has(record.name)) {
          said.textContent = `A student named ${record.name} already exists: choose another name, or add a photo on their row.`;
          return;
        }
        const submit = form.querySelector("button[type=submit]");
        submit.disabled = true;
        try {
          said.textContent = `Adding ${record.name}…`;
          const added = await api("v1/students", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify([record]),
          });
          if (!added.ok) {
            said.textContent = `Not added: ${errorMessage(added.body, added.status)}`;
            return;
          }
          said.textContent = `Added ${record.name}; enrolling this face…`;
          const outcome = await enrolPhoto(record.name, crop, "image/jpeg");
          if (outcome.enrolled) {
            said.textContent = `Enrolled ${record.name}: this face is theirs from the next video on.`;
            form.hidden = true;
            toggle.setAttribute("aria-expanded", "false");
            toggle.hidden = true; // enrolled: nothing more to do with this face
            said.focus(); // the keyboard's place was in the form, now hidden
          } else {
            said.textContent = `${record.name} was added, but this face was not enrolled: ${outcome.message}`;
          }
          await loadStudents();
        } finally {
          submit.disabled = false;
        }
      });

      // The crop needs the API key, which an <img src> cannot send: fetched, then shown from a blob: URL.
      api(`${videoPath}/unknown/${encodeURIComponent(person.crop)}`, { as: "blob" }).then((r) => {
        if (run !== current) return;
        if (!r.ok || !(r.body instanceof Blob)) {
          picture.setAttribute("aria-label", `${label}: no picture`);
          return;
        }
        crop = r.body;
        const url = URL.createObjectURL(crop);
        urls.push(url);
        picture.replaceWith(el("img", { class: "crop", src: url, alt: label, width: 96, height: 96 }));
      });

      return el(
        "li",
        { class: "card unknown-face", "data-crop": person.crop },
        picture,
        el(
          "div",
          { class: "body" },
          el("p", { class: "name", text: label }),
          el("p", { class: "state", text: `${spansText(person.spans || [])} (${minutes(person.present_s)} in all)` }),
          toggle,
          form,
          said,
        ),
      );
    }

    // ---- the report ----------------------------------------------------------------------------

    function render(report, answer, fileName, run) {
      const duration = report.duration_s || 0;
      const missing = report.missing_spans || [];
      const students = report.students || [];
      const unknown = report.unknown || [];
      const absent = report.absent || [];
      const videoPath = `v1/videos/${encodeURIComponent(answer.video)}`;
      const parts = [
        el("h4", { text: `Attendance across ${fileName}` }),
        el("p", {
          class: "summary",
          text: `${clock(duration)} of lecture, one frame every ${report.sample_every_s} s (${report.frames_sampled} frames). `
            + `Present: seen for at least ${minutes(report.min_present_s)}; partial: seen for less.`,
        }),
      ];
      if (missing.length) {
        parts.push(el("p", {
          class: "note",
          text: `Part of the lecture could not be read (${missing.map(span).join(", ")}, hatched below): `
            + "nobody is counted there or absent from what it would have shown.",
        }));
      }
      const lanes = students.map((s) => studentLane(s, duration, missing));
      unknown.forEach((person, n) => {
        lanes.push(lane({
          name: `Unknown person ${n + 1}`,
          badge: el("span", { class: "badge unknown", text: "not enrolled" }),
          facts: el("p", { class: "facts", text: `First seen ${clock(person.first_seen_s)} · ${minutes(person.present_s)} seen` }),
          spans: person.spans || [], duration, missing, kind: "unknown", data: { "data-unknown": n },
        }));
      });
      if (lanes.length) {
        parts.push(
          el("ul", { class: "timeline", id: "timeline", "aria-label": `Who was seen when, across ${clock(duration)} of lecture` }, ...lanes),
          el("div", { class: "axis-row" }, el("span", { class: "axis-label", text: "Time into the lecture" }), axis(duration)),
        );
      } else {
        parts.push(el("p", { text: "Nobody was seen in this lecture." }));
      }
      parts.push(el("h5", { text: `Absent (${absent.length})` }));
      parts.push(absent.length
        ? el("ul", { class: "absent", id: "absent", "aria-label": "Enrolled students never seen" }, ...absent.map((name) => el("li", { text: name })))
        : el("p", { text: "Every enrolled student was seen." }));
      parts.push(el("h5", { text: `Unknown faces (${report.unknown_faces || 0})` }));
      if (unknown.length) {
        parts.push(
          el("p", { text: "People nobody enrolled. If one is a student, enrol them from their face here." }),
          el("ul", { class: "results unknowns", id: "unknown-faces" }, ...unknown.map((p, n) => unknownCard(p, n, videoPath, run))),
        );
      } else {
        parts.push(el("p", { text: "No unknown faces." }));
      }
      if (students.length) parts.push(el("p", {}, csvLink(report, answer.csv)));
      box.replaceChildren(...parts);
    }

    /** Wait for the report of the video `answer` (POST v1/videos's body) and show it. */
    async function follow(run, answer, fileName) {
      status.textContent = "Taking attendance across the whole lecture: following everyone through it…";
      const path = `v1/videos/${encodeURIComponent(answer.video)}/attendance`;
      const found = await poll(async () => {
        if (run !== current) return null; // a newer upload: stop
        const r = await api(path);
        return r.status === 404 ? undefined : r;
      }, { timeoutMs: FOLLOW_MS });
      if (found === null || run !== current) return;
      if (!found) {
        status.textContent = "No attendance after 20 minutes: the lecture may still be processing.";
        return;
      }
      if (!found.ok) {
        status.textContent = `Attendance: ${errorMessage(found.body, found.status)}`;
        return;
      }
      const report = found.body;
      if (report.error) {
        status.textContent = `Attendance could not be taken: ${report.error.message || report.error.code}`;
        return;
      }
      const seen = (report.students || []).length;
      const absent = (report.absent || []).length;
      const unknown = report.unknown_faces || 0;
      status.textContent = `Attendance taken: ${seen} student${seen === 1 ? "" : "s"} seen, ${absent} absent, `
        + `${unknown} unknown face${unknown === 1 ? "" : "s"}.`;
      render(report, answer, fileName, run);
    }

    return { reset, follow };
  })();

  loadStudents();
  document.addEventListener("iraas:key", loadStudents); // the list is read again with the key entered
})();
