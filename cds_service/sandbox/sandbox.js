// The sandbox page is a CDS Hooks 2.0 client: discovery, a patient-view call with prefetch,
// cards rendered as an EHR would, and feedback. All text reaches the DOM through textContent or
// text nodes; card markdown is turned into elements, never into an HTML string.
"use strict";

(() => {
  const SERVICE_ID = "sarcoma-patient-view";
  const TIMEOUT_MS = 10000;
  const INDICATORS = { info: "Info", warning: "Warning", critical: "Critical" };
  const EXT_STATEMENTS = "org.sarcoma-cds.statements";
  const EXT_EVIDENCE = "org.sarcoma-cds.evidence";

  const $ = (selector, root = document) => root.querySelector(selector);
  const el = (tag, text) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const pretty = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 2));

  const ui = {
    select: $('[data-testid="patient-select"]'),
    description: $('[data-testid="patient-description"]'),
    rerun: $('[data-testid="rerun"]'),
    status: $('[data-testid="status"]'),
    service: $('[data-testid="service-title"]'),
    cards: $('[data-testid="cards"]'),
    rawRequest: $('[data-testid="raw-request"]'),
    rawResponse: $('[data-testid="raw-response"]'),
    rawFeedback: $('[data-testid="raw-feedback"]'),
    endpoint: $('[data-testid="request-endpoint"]'),
    httpStatus: $('[data-testid="response-status"]'),
    elapsed: $('[data-testid="elapsed"]'),
    stored: $('[data-testid="stored-feedback"] tbody'),
    report: $('[data-testid="feedback-report"] tbody'),
    template: $("#card-template"),
  };
  const state = { fixtures: [], summaries: new Map(), call: 0 };

  // --- HTTP -------------------------------------------------------------------------------------

  async function fetchJson(url, options = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      const headers = { Accept: "application/json", ...(options.headers || {}) };
      const response = await fetch(url, { ...options, headers, signal: controller.signal });
      const text = await response.text();
      let body = text;
      try {
        body = text ? JSON.parse(text) : null;
      } catch (_) {
        // not JSON: keep the text to show it
      }
      return { ok: response.ok, status: response.status, body };
    } catch (error) {
      if (error.name === "AbortError") throw new Error(`no answer within ${TIMEOUT_MS / 1000} s`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  function problem(result) {
    const issue = result.body && Array.isArray(result.body.issue) ? result.body.issue[0] : null;
    return `HTTP ${result.status}` + (issue && issue.diagnostics ? `: ${issue.diagnostics}` : "");
  }

  function newUuid() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // --- markdown (card detail) ---------------------------------------------------------------------

  const INLINE = new RegExp(
    [
      String.raw`\\([\\\x60*_{}\[\]()#+\-.!<>|:@])`, // 1 escaped character
      String.raw`\*\*(.+?)(?<!\\)\*\*`, // 2 bold
      String.raw`(?<![\w\\])_(.+?)(?<!\\)_(?!\w)`, // 3 emphasis
      String.raw`(?<![\w\\*])\*(?![\s*])(.+?)(?<![\s\\])\*`, // 4 emphasis
      "\x60([^\x60]+)\x60", // 5 code
      String.raw`\[([^\]]+)\]\(([^)\s]+)\)`, // 6, 7 link
    ].join("|"),
    "g",
  );

  function safeUrl(href) {
    try {
      const url = new URL(href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function externalLink(href, text) {
    const a = el("a", text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function appendInline(parent, text) {
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) {
        parent.append(document.createTextNode(m[1]));
      } else if (m[2] !== undefined) {
        const strong = el("strong");
        appendInline(strong, m[2]);
        parent.append(strong);
      } else if (m[3] !== undefined || m[4] !== undefined) {
        const em = el("em");
        appendInline(em, m[3] !== undefined ? m[3] : m[4]);
        parent.append(em);
      } else if (m[5] !== undefined) {
        parent.append(el("code", m[5]));
      } else {
        const href = safeUrl(m[7]);
        parent.append(href ? externalLink(href, m[6]) : document.createTextNode(m[0]));
      }
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  function renderMarkdown(markdown, container) {
    let paragraph = [];
    let list = null;
    const flush = () => {
      if (paragraph.length) {
        const p = el("p");
        appendInline(p, paragraph.join(" "));
        container.append(p);
      }
      paragraph = [];
    };
    for (const line of markdown.replace(/\r\n?/g, "\n").split("\n")) {
      const heading = /^(#{1,6})\s+(.*)$/.exec(line);
      const item = /^\s*(?:([-*+])|\d+[.)])\s+(.*)$/.exec(line);
      if (!line.trim()) {
        flush();
        list = null;
      } else if (heading) {
        flush();
        list = null;
        const h = el(`h${Math.min(heading[1].length + 3, 6)}`);
        appendInline(h, heading[2]);
        container.append(h);
      } else if (item) {
        flush();
        const kind = item[1] ? "UL" : "OL";
        if (!list || list.tagName !== kind) {
          list = el(kind.toLowerCase());
          container.append(list);
        }
        const li = el("li");
        appendInline(li, item[2]);
        list.append(li);
      } else if (list && /^\s{2,}/.test(line)) {
        appendInline(list.lastElementChild, ` ${line.trim()}`);
      } else {
        list = null;
        paragraph.push(line.trim());
      }
    }
    flush();
  }

  // --- cards --------------------------------------------------------------------------------------

  function renderCard(card) {
    const node = ui.template.content.firstElementChild.cloneNode(true);
    const indicator = INDICATORS[card.indicator] ? card.indicator : "info";
    node.classList.add(`indicator-${indicator}`);
    node.dataset.indicator = indicator;
    $(".indicator", node).textContent = INDICATORS[indicator];
    $(".summary", node).textContent = card.summary || "";
    const detail = $(".detail", node);
    if (card.detail) renderMarkdown(card.detail, detail);
    else detail.remove();
    renderSource(card.source || {}, $(".source-label", node));
    renderExtension(card.extension || {}, $(".extension", node));
    renderSuggestions(card, node);
    renderLinks(card.links || [], $(".links", node));
    renderDismiss(card, node);
    return node;
  }

  function renderSource(source, slot) {
    const href = source.url ? safeUrl(source.url) : null;
    slot.append(href ? externalLink(href, source.label || href) : document.createTextNode(source.label || "unknown"));
  }

  function renderExtension(extension, slot) {
    const statements = extension[EXT_STATEMENTS] || [];
    if (statements.length) slot.append(el("p", `Statements: ${statements.join(", ")}`));
    const evidence = (extension[EXT_EVIDENCE] || []).filter((e) => e.level);
    if (evidence.length) {
      const list = el("ul");
      list.className = "evidence";
      for (const e of evidence) list.append(el("li", `${e.statement}: ${e.text || e.level}`));
      slot.append(list);
    }
    if (!slot.childElementCount) slot.remove();
  }

  function renderSuggestions(card, node) {
    const slot = $(".suggestions", node);
    for (const suggestion of card.suggestions || []) {
      const button = el("button", suggestion.label + (suggestion.isRecommended ? " (recommended)" : ""));
      button.type = "button";
      button.dataset.testid = "suggestion";
      if (!card.uuid || !suggestion.uuid) {
        button.disabled = true;
        button.title = "The card or suggestion has no uuid, so no feedback can be sent";
      }
      button.addEventListener("click", () =>
        sendFeedback(card, node, { outcome: "accepted", acceptedSuggestions: [{ id: suggestion.uuid }] }),
      );
      slot.append(button);
    }
    if (!slot.childElementCount) slot.remove();
  }

  function renderLinks(links, slot) {
    for (const link of links) {
      const li = el("li");
      const href = link.type !== "smart" ? safeUrl(link.url) : null;
      if (href) li.append(externalLink(href, link.label));
      else li.append(document.createTextNode(`${link.label} (SMART app link, not launched in the sandbox)`));
      slot.append(li);
    }
    if (!slot.childElementCount) slot.remove();
  }

  function renderDismiss(card, node) {
    const button = $(".dismiss", node);
    const form = $(".dismiss-form", node);
    const select = $(".override-reason", node);
    const reasons = card.overrideReasons || [];
    if (!card.uuid) {
      button.disabled = true;
      button.title = "The card has no uuid, so no feedback can be sent";
      return;
    }
    select.append(el("option", "No reason given"));
    select.lastElementChild.value = "";
    for (const reason of reasons) {
      const option = el("option", reason.display || reason.code);
      option.value = reason.code;
      select.append(option);
    }
    if (!reasons.length) $(".reason-label", node).hidden = true;
    button.addEventListener("click", () => {
      form.hidden = false;
      button.hidden = true;
      select.focus();
    });
    $(".cancel-dismiss", node).addEventListener("click", () => {
      form.hidden = true;
      button.hidden = false;
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = reasons.find((r) => r.code === select.value);
      const comment = $(".override-comment", node).value.trim();
      const item = { outcome: "overridden" };
      if (reason || comment) {
        item.overrideReason = {};
        if (reason) item.overrideReason.reason = reason;
        if (comment) item.overrideReason.userComment = comment;
      }
      sendFeedback(card, node, item);
    });
  }

  // --- feedback -----------------------------------------------------------------------------------

  async function sendFeedback(card, node, item) {
    const status = $(".feedback-status", node);
    const body = { feedback: [{ card: card.uuid, outcomeTimestamp: new Date().toISOString(), ...item }] };
    status.textContent = "Sending feedback…";
    ui.rawFeedback.textContent = `POST /cds-services/${SERVICE_ID}/feedback\n${pretty(body)}`;
    try {
      const result = await fetchJson(`/cds-services/${SERVICE_ID}/feedback`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      ui.rawFeedback.textContent += `\n\nHTTP ${result.status}\n${pretty(result.body)}`;
      if (!result.ok) {
        status.textContent = `Feedback not stored: ${problem(result)}`;
        return;
      }
      status.textContent = item.outcome === "accepted" ? "Feedback stored: suggestion accepted" : "Feedback stored: card dismissed";
      node.classList.add(item.outcome === "accepted" ? "accepted" : "dismissed");
      for (const control of node.querySelectorAll("button, select, textarea")) control.disabled = true;
      await refreshStoredFeedback();
    } catch (error) {
      status.textContent = `Feedback not stored: ${error.message}`;
    }
  }

  async function refreshStoredFeedback() {
    const result = await fetchJson("/sandbox/feedback");
    if (!result.ok) return;
    ui.stored.replaceChildren();
    for (const row of result.body.feedback.slice(-20).reverse()) {
      const tr = el("tr");
      const reason = row.overrideReason || {};
      const reasonText = [reason.reason ? reason.reason.code : "", reason.userComment || ""].filter(Boolean).join(": ");
      const cardText = state.summaries.get(row.card) || row.card;
      for (const text of [cardText, row.outcome, reasonText || (row.acceptedSuggestions || []).join(", "), row.outcomeTimestamp]) {
        tr.append(el("td", text));
      }
      ui.stored.append(tr);
    }
    if (!ui.stored.childElementCount) {
      const tr = el("tr");
      const td = el("td", "No feedback stored yet.");
      td.colSpan = 4;
      tr.append(td);
      ui.stored.append(tr);
    }
    await refreshFeedbackReport();
  }

  // The per-statement report: cards shown (every hook call is recorded), accepted, overridden, why.
  async function refreshFeedbackReport() {
    const result = await fetchJson("/sandbox/feedback-report");
    if (!result.ok) return;
    ui.report.replaceChildren();
    for (const row of result.body.statements) {
      const tr = el("tr");
      tr.dataset.statement = row.statement;
      const reasons = row.overrideReasons.map((r) => `${r.reason} (${r.count})`).join(", ");
      for (const text of [row.statement, row.shown, row.accepted, row.overridden, reasons]) tr.append(el("td", String(text)));
      ui.report.append(tr);
    }
    if (!ui.report.childElementCount) {
      const tr = el("tr");
      const td = el("td", "No cards issued yet.");
      td.colSpan = 5;
      tr.append(td);
      ui.report.append(tr);
    }
  }

  // --- the hook call ------------------------------------------------------------------------------

  function setStatus(text, isError = false) {
    ui.status.textContent = text;
    ui.status.classList.toggle("error", isError);
  }

  async function openChart(slug) {
    const call = ++state.call;
    const stale = () => call !== state.call;
    ui.cards.replaceChildren();
    ui.rawRequest.textContent = "";
    ui.rawResponse.textContent = "";
    ui.httpStatus.textContent = "";
    ui.elapsed.textContent = "";
    ui.rerun.disabled = !slug;
    const fixture = state.fixtures.find((f) => f.slug === slug);
    ui.description.textContent = fixture ? fixture.description : "";
    if (!fixture) return setStatus("");
    history.replaceState(null, "", `#${slug}`);
    try {
      setStatus("Reading discovery…");
      const discovery = await fetchJson("/cds-services");
      if (stale()) return;
      if (!discovery.ok) return setStatus(`Discovery failed: ${problem(discovery)}`, true);
      const service = (discovery.body.services || []).find((s) => s.id === SERVICE_ID);
      if (!service) return setStatus(`Discovery lists no '${SERVICE_ID}' service`, true);
      ui.service.textContent = `${service.title} (${service.hook})`;

      setStatus("Gathering the chart…");
      const chart = await fetchJson(`/sandbox/fixtures/${encodeURIComponent(slug)}/prefetch`);
      if (stale()) return;
      if (!chart.ok) return setStatus(`Fixture not available: ${problem(chart)}`, true);
      const prefetch = {};
      for (const key of Object.keys(service.prefetch || {})) {
        if (key in chart.body.prefetch) prefetch[key] = chart.body.prefetch[key];
      }
      const request = { hook: service.hook, hookInstance: newUuid(), context: chart.body.context, prefetch };
      const url = `/cds-services/${encodeURIComponent(service.id)}`;
      ui.endpoint.textContent = `POST ${url}`;
      ui.rawRequest.textContent = pretty(request);

      setStatus(`Calling ${service.id}…`);
      const started = performance.now();
      const result = await fetchJson(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
      });
      const elapsed = Math.round(performance.now() - started);
      if (stale()) return;
      ui.elapsed.textContent = `${elapsed} ms`;
      ui.httpStatus.textContent = `HTTP ${result.status}`;
      ui.rawResponse.textContent = pretty(result.body);
      if (!result.ok) return setStatus(`The service refused the call: ${problem(result)}`, true);
      showCards(result.body.cards || [], elapsed);
    } catch (error) {
      if (!stale()) setStatus(`The call failed: ${error.message}`, true);
    }
  }

  function showCards(cards, elapsed) {
    for (const card of cards) {
      if (card.uuid) state.summaries.set(card.uuid, card.summary);
      ui.cards.append(renderCard(card));
    }
    if (!cards.length) ui.cards.append(el("p", "The service returned no cards for this patient."));
    setStatus(`${cards.length} card${cards.length === 1 ? "" : "s"} in ${elapsed} ms`);
    refreshFeedbackReport().catch(() => {});
  }

  // --- start --------------------------------------------------------------------------------------

  async function start() {
    ui.select.addEventListener("change", () => openChart(ui.select.value));
    ui.rerun.addEventListener("click", () => openChart(ui.select.value));
    try {
      const result = await fetchJson("/sandbox/fixtures");
      if (!result.ok) return setStatus(`Cannot list fixtures: ${problem(result)}`, true);
      state.fixtures = result.body.fixtures;
    } catch (error) {
      return setStatus(`Cannot list fixtures: ${error.message}`, true);
    }
    const placeholder = el("option", `Choose one of ${state.fixtures.length} patients…`);
    placeholder.value = "";
    ui.select.replaceChildren(placeholder);
    for (const fixture of state.fixtures) {
      const option = el("option", fixture.description ? `${fixture.slug} — ${fixture.description}` : fixture.slug);
      option.value = fixture.slug;
      ui.select.append(option);
    }
    ui.select.dataset.ready = "true";
    refreshStoredFeedback().catch(() => {});
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (state.fixtures.some((f) => f.slug === wanted)) {
      ui.select.value = wanted;
      openChart(wanted);
    }
  }

  start();
})();
