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
    } finally {
      button.disabled = false;
    }
  });

  // ---- the students ----------------------------------------------------------------------

  const studentsBody = $("students").querySelector("tbody");
  const studentsStatus = $("students-status");

  async function enrol(student, input) {
    const files = [...input.files];
    input.value = "";
    for (const file of files) {
      studentsStatus.textContent = `Enrolling ${file.name} for ${student.name}…`;
      const path = `v1/students/${encodeURIComponent(student.name)}/photos`;
      const sent = await upload(path, file, file.type || "application/octet-stream", () => {});
      if (!sent.ok) {
        studentsStatus.textContent = `${file.name}: ${errorMessage(sent.body, sent.status)}`;
        continue;
      }
      const outcome = await poll(async () => {
        const r = await api(`v1/enrolments/${encodeURIComponent(sent.body.enrolment)}`);
        return r.status === 202 ? undefined : r;
      });
      if (!outcome) studentsStatus.textContent = `${file.name}: no answer from the face function yet`;
      else if (outcome.ok && outcome.body.status === "enrolled") {
        studentsStatus.textContent = `Enrolled a face of ${student.name} from ${file.name}.`;
      } else {
        const reason = (outcome.body && outcome.body.error) || errorMessage(outcome.body, outcome.status);
        studentsStatus.textContent = `${file.name}: not enrolled: ${reason}`;
      }
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

  loadStudents();
  document.addEventListener("iraas:key", loadStudents); // the list is read again with the key entered
})();
