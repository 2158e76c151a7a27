// The playground: a plain page that uses the Sessions API as any front end would. No framework, no build.
// Every piece of user or model text goes into the page as text (textContent); slide HTML is shown only inside
// sandboxed iframes, where it cannot run scripts or reach this page.
"use strict";

(() => {
  // Paths are relative to the page (/api/v1/playground), so the page works under any stage or base path.
  const TOKEN_KEY = "sessions-api-playground.token";
  const SILENCE_MS = 4000; // a WebSocket this quiet during a run is given up on: poll instead
  const POLL_WAIT_SECONDS = 10;
  const FINISHED = new Set(["completed", "error", "cancelled"]);
  const SLIDE_WIDTH = 960; // slides are laid out at 960×540 and scaled to the pane
  const SLIDE_HEIGHT = 540;
  const SLIDE_BASE_CSS =
    "html,body{margin:0;height:100%;}body{box-sizing:border-box;padding:40px 56px;overflow:hidden;" +
    "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#fff;color:#222;}" +
    "img,svg,video{max-width:100%;height:auto;}table{border-collapse:collapse;}td,th{border:1px solid #ccc;padding:4px 8px;}";

  const $ = (id) => document.getElementById(id);
  const ui = {
    loading: $("loading"),
    identity: $("identity"),
    signOut: $("sign-out"),
    notice: $("notice"),
    noticeText: $("notice-text"),
    noticeClose: $("notice-close"),
    auth: $("auth"),
    authForm: $("auth-form"),
    token: $("token"),
    app: $("app"),
    newSession: $("new-session"),
    search: $("session-search"),
    sessionList: $("session-list"),
    moreSessions: $("more-sessions"),
    title: $("session-title"),
    renameForm: $("rename-form"),
    renameInput: $("rename-input"),
    renameCancel: $("rename-cancel"),
    rename: $("rename"),
    remove: $("delete"),
    transcript: $("transcript"),
    emptyChat: $("empty-chat"),
    composer: $("composer"),
    agent: $("agent"),
    runStatus: $("run-status"),
    input: $("message-input"),
    send: $("send"),
    stop: $("stop"),
    deck: $("deck"),
    exportPptx: $("export-pptx"),
    exportPdf: $("export-pdf"),
    exportStatus: $("export-status"),
  };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    websocketUrl: "",
    live: null,
    sessions: [],
    nextCursor: null,
    current: null, // the selected session, as the API last answered it
    run: null, // the run this page is showing, see watchRun
  };

  // --- small helpers --------------------------------------------------------------------------------

  /** An element with properties (`text` sets textContent) and children (strings become text nodes). */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key in node) node[key] = value;
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const enc = encodeURIComponent;

  function when(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
  }

  class ApiProblem extends Error {
    constructor(status, problem) {
      const title = problem.title || problem.message || (status ? `HTTP ${status}` : "Network error");
      super(problem.detail ? `${title}: ${problem.detail}` : title);
      this.status = status;
      this.code = problem.code || "";
      this.problem = problem;
    }
  }

  function showNotice(message) {
    ui.noticeText.textContent = message;
    ui.notice.hidden = false;
  }

  function showProblem(error, doing) {
    console.error(error);
    showNotice(`${doing} failed. ${error.message || error}`);
  }

  // --- the HTTP API ---------------------------------------------------------------------------------

  /** Calls the API; JSON in and out. Throws ApiProblem with the RFC 9457 problem for any error status. */
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiProblem(0, { title: "Network error", detail: "the API could not be reached" });
    }
    const text = response.status === 204 ? "" : await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      const problem = data && typeof data === "object" ? data : {};
      if (response.status === 401) askForToken("The API refused the token (expired, or from another issuer).");
      throw new ApiProblem(response.status, problem);
    }
    return data;
  }

  // --- identity -------------------------------------------------------------------------------------
  // Locally the gateway plays the authorizer: a request without a token runs as its dev user. Deployed, the
  // API needs `Authorization: Bearer <JWT>`: the page asks for one and keeps it in this tab's sessionStorage.
  // Signing in through Cognito's hosted UI (or any OAuth redirect) is out of scope for this page.

  function claimsOf(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (error) {
      return {};
    }
  }

  function showIdentity() {
    if (state.token) {
      const claims = claimsOf(state.token);
      const who = claims.email || claims["cognito:username"] || claims.sub || "the token's user";
      ui.identity.textContent = `Signed in as ${who} (bearer token)`;
      ui.signOut.hidden = false;
    } else {
      ui.identity.textContent = "Local development: no token needed, you are the gateway's dev user";
      ui.signOut.hidden = true;
    }
  }

  function askForToken(reason) {
    state.token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    detachRun();
    ui.app.hidden = true;
    ui.loading.hidden = true;
    ui.auth.hidden = false;
    ui.signOut.hidden = true;
    ui.identity.textContent = "";
    if (reason) showNotice(reason);
    ui.token.focus();
  }

  // --- configuration and the WebSocket --------------------------------------------------------------

  async function loadConfig() {
    try {
      const config = await api("GET", "playground/config.json");
      state.websocketUrl = typeof config.websocket_url === "string" ? config.websocket_url : "";
    } catch (error) {
      state.websocketUrl = ""; // polling works everywhere
    }
  }

  /** One WebSocket to the live API, opened on the first run and reopened when it drops during one. */
  class Live {
    constructor(url) {
      this.url = url;
      this.socket = null;
      this.opened = null;
    }

    connect() {
      if (this.socket && this.socket.readyState <= WebSocket.OPEN) return this.opened;
      const url = new URL(this.url);
      // Browsers cannot set headers on a WebSocket: the token travels as ?token=.
      if (state.token) url.searchParams.set("token", state.token);
      const socket = new WebSocket(url.href);
      this.socket = socket;
      this.opened = new Promise((resolve, reject) => {
        socket.addEventListener("open", () => resolve(socket), { once: true });
        socket.addEventListener("close", () => reject(new Error("the WebSocket closed")), { once: true });
      });
      this.opened.catch(() => {});
      socket.addEventListener("message", (message) => receiveFrame(message.data));
      socket.addEventListener("close", () => {
        if (this.socket === socket) this.socket = null;
        liveDropped();
      });
      return this.opened;
    }

    async subscribe(requestId, after) {
      const socket = await this.connect();
      socket.send(JSON.stringify({ action: "subscribe", request_id: requestId, after }));
    }
  }

  function receiveFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (error) {
      return;
    }
    const run = state.run;
    if (!run || !frame || frame.request_id !== run.requestId) return;
    if (frame.type === "subscribed") {
      run.heard = Date.now();
    } else if (frame.type === "problem") {
      console.warn("WebSocket problem", frame.problem);
      startPolling(run); // e.g. not allowed to subscribe there: HTTP will say why, or deliver
    } else if (typeof frame.id === "number") {
      applyEvent(run, frame, "websocket");
    }
  }

  function liveDropped() {
    const run = state.run;
    if (!run || run.done || run.reconnects >= 3) return;
    run.reconnects += 1;
    // Resume where we are: the server replays the events after the last id we applied.
    setTimeout(() => {
      if (state.run === run && !run.done) subscribeLive(run);
    }, 1000 * run.reconnects);
  }

  async function subscribeLive(run) {
    try {
      await state.live.subscribe(run.requestId, run.lastId);
    } catch (error) {
      startPolling(run);
    }
  }

  // --- sessions -------------------------------------------------------------------------------------

  let listing = 0; // only the latest list request is shown

  async function loadSessions({ more = false } = {}) {
    const ticket = ++listing;
    const query = new URLSearchParams({ limit: "30" });
    const search = ui.search.value.trim();
    if (search) query.set("search", search);
    if (more && state.nextCursor) query.set("cursor", state.nextCursor);
    try {
      const page = await api("GET", `sessions?${query}`);
      if (ticket !== listing) return;
      state.sessions = more ? [...state.sessions, ...page.sessions] : page.sessions;
      state.nextCursor = page.has_more ? page.next_cursor : null;
      renderSessions();
    } catch (error) {
      if (error.status !== 401) showProblem(error, "Loading the sessions");
    }
  }

  function renderSessions() {
    const currentId = state.current && state.current.session_id;
    const items = state.sessions.map((session) => {
      const button = el(
        "button",
        { type: "button", className: "session", dataset: { sessionId: session.session_id } },
        el("span", { className: "session-title", text: session.title || "Untitled" }),
        el("span", { className: "session-preview", text: session.last_message_preview || "No messages yet" }),
        el("span", { className: "session-meta", text: `${session.status} · ${when(session.last_activity_at)}` }),
      );
      if (session.session_id === currentId) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => selectSession(session.session_id));
      return el("li", {}, button);
    });
    if (!items.length) {
      const text = ui.search.value.trim() ? "No session has that in its title." : "No sessions yet.";
      items.push(el("li", { className: "muted empty", text }));
    }
    ui.sessionList.replaceChildren(...items);
    ui.moreSessions.hidden = !state.nextCursor;
  }

  async function createSession() {
    try {
      const agent = ui.agent.value;
      const session = await api("POST", "sessions", { title: "New chat", agent_name: agent });
      ui.search.value = "";
      await selectSession(session.session_id, session);
      await loadSessions();
      ui.input.focus();
      return session;
    } catch (error) {
      if (error.status !== 401) showProblem(error, "Creating a session");
      return null;
    }
  }

  let selecting = 0; // the latest pick wins over a slower earlier one

  async function selectSession(sessionId, known) {
    const ticket = ++selecting;
    detachRun();
    cancelRename();
    try {
      const session = known || (await api("GET", `sessions/${enc(sessionId)}`));
      if (ticket !== selecting) return;
      state.current = session;
    } catch (error) {
      if (ticket !== selecting) return;
      if (error.status === 404) {
        state.current = null;
        showNotice("That session no longer exists.");
        await loadSessions();
      } else if (error.status !== 401) {
        showProblem(error, "Opening the session");
      }
      renderCurrent();
      return;
    }
    ui.agent.value = state.current.agent_name === "slides" ? "slides" : "chat";
    renderCurrent();
    renderSessions();
    await Promise.all([loadTranscript(), loadDeck()]);
    if (ticket === selecting && state.current.active_run && !state.run) {
      watchRun(state.current.active_run, { resumed: true });
    }
  }

  function renderCurrent() {
    const session = state.current;
    ui.title.textContent = session ? session.title || "Untitled" : "No session selected";
    ui.rename.disabled = ui.remove.disabled = !session;
    disarmDelete();
    if (!session) {
      ui.transcript.replaceChildren();
      ui.emptyChat.hidden = false;
      renderDeck(null);
    }
  }

  function startRename() {
    if (!state.current) return;
    ui.renameInput.value = state.current.title || "";
    ui.renameForm.hidden = false;
    ui.title.hidden = true;
    ui.renameInput.focus();
    ui.renameInput.select();
  }

  function cancelRename() {
    ui.renameForm.hidden = true;
    ui.title.hidden = false;
  }

  async function saveRename(event) {
    event.preventDefault();
    const title = ui.renameInput.value.trim();
    if (!state.current || !title) return;
    try {
      state.current = await api("PATCH", `sessions/${enc(state.current.session_id)}`, { title });
      cancelRename();
      renderCurrent();
      await loadSessions();
    } catch (error) {
      if (error.status !== 401) showProblem(error, "Renaming");
    }
  }

  // Deleting takes two presses: the first arms the button for a few seconds.
  let deleteTimer = null;

  function disarmDelete() {
    clearTimeout(deleteTimer);
    delete ui.remove.dataset.armed;
    ui.remove.textContent = "Delete";
  }

  async function deleteSession() {
    if (!state.current) return;
    if (!ui.remove.dataset.armed) {
      ui.remove.dataset.armed = "true";
      ui.remove.textContent = "Press again to delete";
      deleteTimer = setTimeout(disarmDelete, 5000);
      return;
    }
    disarmDelete();
    try {
      await api("DELETE", `sessions/${enc(state.current.session_id)}`);
      detachRun();
      state.current = null;
      renderCurrent();
      await loadSessions();
    } catch (error) {
      if (error.status !== 401) showProblem(error, "Deleting the session");
    }
  }

  // --- the transcript -------------------------------------------------------------------------------

  const ROLE_NAMES = { user: "You", assistant: "Assistant", system: "System" };

  function messageItem(role, content, { stopped = false, isError = false } = {}) {
    const head = el("div", { className: "message-head" }, el("span", { className: "role", text: ROLE_NAMES[role] || role }));
    if (stopped) head.append(el("span", { className: "badge", text: "stopped" }));
    if (isError) head.append(el("span", { className: "badge error", text: "error" }));
    const body = el("div", { className: "content" }, content);
    const item = el("li", { className: `message ${role}${isError ? " is-error" : ""}` }, head, body);
    return { item, body };
  }

  function nearBottom() {
    const box = ui.transcript;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function append(item) {
    const follow = nearBottom();
    ui.transcript.append(item);
    ui.emptyChat.hidden = true;
    if (follow) ui.transcript.scrollTop = ui.transcript.scrollHeight;
  }

  async function loadTranscript() {
    const session = state.current;
    if (!session) return;
    try {
      const page = await api("GET", `sessions/${enc(session.session_id)}/messages?order=desc&limit=100`);
      if (state.current !== session) return;
      const items = page.messages
        .slice()
        .reverse()
        .map(
          (message) =>
            messageItem(message.role, message.content || "", { stopped: message.stopped, isError: message.is_error })
              .item,
        );
      if (page.has_more) items.unshift(el("li", { className: "muted older", text: "Older messages are not shown." }));
      ui.transcript.replaceChildren(...items);
      ui.emptyChat.hidden = items.length > 0;
      ui.transcript.scrollTop = ui.transcript.scrollHeight;
    } catch (error) {
      if (error.status !== 401) showProblem(error, "Loading the messages");
    }
  }

  // --- chat runs ------------------------------------------------------------------------------------

  async function send(event) {
    event.preventDefault();
    const message = ui.input.value.trim();
    if (!message || (state.run && !state.run.done)) return;
    if (!state.current && !(await createSession())) return;
    const session = state.current;
    ui.send.disabled = true;
    try {
      const accepted = await api("POST", `sessions/${enc(session.session_id)}/chat/async`, {
        message,
        agent_name: ui.agent.value,
      });
      ui.input.value = "";
      append(messageItem("user", message).item);
      watchRun(accepted.request_id);
      if (session.message_count === 0 && /^new chat$/i.test(session.title || "")) nameAfter(session, message);
    } catch (error) {
      ui.send.disabled = false;
      if (error.code === "session_busy") {
        showNotice("The assistant is still answering in this session: stop it or wait for it to finish.");
      } else if (error.status !== 401) {
        showProblem(error, "Sending");
      }
    }
  }

  /** A new session takes its first message as its title, as chat apps do. */
  async function nameAfter(session, message) {
    const words = message.replace(/\s+/g, " ").replace(/\[stream \d+\]/g, "").trim();
    const title = words.length > 60 ? `${words.slice(0, 59)}…` : words;
    if (!title) return;
    try {
      const renamed = await api("PATCH", `sessions/${enc(session.session_id)}`, { title });
      if (state.current && state.current.session_id === session.session_id) {
        state.current = { ...renamed, active_run: state.current.active_run };
        renderCurrent();
      }
      await loadSessions();
    } catch (error) {
      console.warn("could not title the session", error);
    }
  }

  function setRunning(running, status) {
    ui.composer.dataset.run = running ? "running" : "idle";
    ui.send.disabled = running;
    ui.stop.disabled = !running;
    ui.transcript.setAttribute("aria-busy", String(running));
    ui.runStatus.textContent = status;
  }

  /** Shows the run's events as they come: over the WebSocket when there is one, else (or when it goes
   * quiet) by long-polling. Events are applied once each, in order, whichever way they arrive. */
  function watchRun(requestId, { resumed = false } = {}) {
    detachRun();
    const run = {
      requestId,
      sessionId: state.current.session_id,
      lastId: 0,
      reply: null, // the Text node the reply grows in
      notes: null,
      done: false,
      polling: false,
      heard: Date.now(),
      reconnects: 0,
      sawSlides: false,
      watchdog: null,
    };
    state.run = run;
    ui.transcript.dataset.transport = "none";
    setRunning(true, resumed ? "A reply is being written…" : "Waiting for the assistant…");
    if (state.websocketUrl) {
      if (!state.live) state.live = new Live(state.websocketUrl);
      subscribeLive(run);
      run.watchdog = setInterval(() => {
        if (!run.done && !run.polling && Date.now() - run.heard > SILENCE_MS) startPolling(run);
      }, 500);
    } else {
      startPolling(run);
    }
  }

  /** Stop showing the current run (another session was picked); the run itself goes on. */
  function detachRun() {
    const run = state.run;
    if (!run) return;
    run.done = true;
    clearInterval(run.watchdog);
    state.run = null;
    setRunning(false, "");
  }

  function replyNode(run) {
    if (!run.reply) {
      const { item, body } = messageItem("assistant", "");
      run.reply = document.createTextNode("");
      run.notes = el("div", { className: "notes" });
      body.append(run.reply);
      item.append(run.notes);
      append(item);
    }
    return run;
  }

  function note(run, text) {
    replyNode(run).notes.append(el("p", { className: "note", text }));
  }

  function applyEvent(run, event, transport) {
    if (run.done || state.run !== run || event.id <= run.lastId) return; // a replay or a duplicate
    run.lastId = event.id;
    run.heard = Date.now();
    ui.transcript.dataset.transport = transport;
    const counter = transport === "websocket" ? "websocketEvents" : "pollingEvents";
    ui.transcript.dataset[counter] = String(Number(ui.transcript.dataset[counter] || 0) + 1);
    switch (event.type) {
      case "assistant": {
        const follow = nearBottom();
        replyNode(run).reply.appendData(event.delta || "");
        if (follow) ui.transcript.scrollTop = ui.transcript.scrollHeight;
        ui.runStatus.textContent = `Writing (live, ${transport === "websocket" ? "WebSocket" : "polling"})…`;
        break;
      }
      case "tool_call":
        note(run, `Using the ${event.tool || "a"} tool…`);
        break;
      case "tool_result":
        note(run, `The ${event.tool || ""} tool answered.`);
        break;
      case "slides":
        run.sawSlides = true;
        note(run, "The slide deck was updated.");
        loadDeck();
        break;
      case "error":
        finishRun(run, { error: event });
        break;
      case "complete":
        finishRun(run, { stopped: Boolean(event.stopped) });
        break;
      default:
        break;
    }
  }

  async function startPolling(run) {
    if (run.polling || run.done) return;
    run.polling = true;
    let failures = 0;
    while (!run.done && state.run === run) {
      try {
        const query = `after_message_id=${run.lastId}&wait=${POLL_WAIT_SECONDS}`;
        const page = await api("GET", `chat/poll/${enc(run.requestId)}?${query}`);
        failures = 0;
        for (const event of page.events || []) applyEvent(run, event, "polling");
        if (!run.done && FINISHED.has(page.status)) {
          // Ended without a final event we saw (its events may have expired): the messages tell the rest.
          finishRun(run, { stopped: page.status === "cancelled", error: page.error });
        }
      } catch (error) {
        if (error.status === 401) return;
        if (error.status === 404) {
          finishRun(run, { error: { detail: "this run is gone" } });
          return;
        }
        failures += 1;
        ui.runStatus.textContent = `Connection trouble, retrying… (${error.message})`;
        await sleep(Math.min(1000 * 2 ** failures, 15000));
      }
    }
  }

  async function stopRun() {
    const run = state.run;
    if (!run || run.done) return;
    ui.stop.disabled = true;
    ui.runStatus.textContent = "Stopping…";
    try {
      await api("POST", `chat/runs/${enc(run.requestId)}/cancel`);
    } catch (error) {
      // 409: it had finished already; either way the messages below are what was kept.
      if (error.code !== "invalid_state_transition") {
        ui.stop.disabled = false;
        if (error.status !== 401) showProblem(error, "Stopping");
        return;
      }
    }
    finishRun(run, { stopped: true });
  }

  async function finishRun(run, { stopped = false, error = null } = {}) {
    if (run.done) return;
    run.done = true;
    clearInterval(run.watchdog);
    if (state.run === run) state.run = null;
    setRunning(false, stopped ? "Stopped: the reply so far is kept." : error ? "The run failed." : "Done.");
    if (error) {
      const detail = error.detail || error.message || error.code || "unknown error";
      showNotice(`The assistant could not answer: ${detail}`);
    }
    if (!state.current || state.current.session_id !== run.sessionId) return;
    // The stored messages are the truth (the reply, or what was kept of it, marked stopped).
    await loadTranscript();
    if (run.sawSlides || ui.agent.value === "slides") await loadDeck();
    try {
      state.current = await api("GET", `sessions/${enc(run.sessionId)}`);
      renderCurrent();
    } catch (problem) {
      console.warn(problem);
    }
    await loadSessions();
  }

  // --- the deck -------------------------------------------------------------------------------------

  async function loadDeck() {
    const session = state.current;
    if (!session) return;
    try {
      const answer = await api("GET", `sessions/${enc(session.session_id)}/slides`);
      if (state.current === session || (state.current && state.current.session_id === session.session_id)) {
        renderDeck(answer.slide_deck);
      }
    } catch (error) {
      if (error.status !== 401) showProblem(error, "Loading the slides");
    }
  }

  function slideDocument(html, css) {
    // A `</style` inside the deck's CSS must not end the style element early.
    const safeCss = String(css || "").replace(/<\/style/gi, "<\\/style");
    return (
      '<!DOCTYPE html><html><head><meta charset="utf-8">' +
      `<style>${SLIDE_BASE_CSS}</style><style>${safeCss}</style></head><body>${html || ""}</body></html>`
    );
  }

  const resizer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      entry.target.style.setProperty("--scale", String(entry.contentRect.width / SLIDE_WIDTH));
    }
  });

  function renderDeck(deck) {
    resizer.disconnect();
    const slides = (deck && deck.slides) || [];
    ui.deck.dataset.slideCount = String(slides.length);
    ui.exportPptx.disabled = ui.exportPdf.disabled = !slides.length;
    if (!slides.length) {
      const hint = state.current
        ? "No slides yet. Choose the Slides agent and ask, for example, “Make 3 slides about tides”."
        : "The selected session's slides show here.";
      ui.deck.replaceChildren(el("p", { className: "muted empty", text: hint }));
      return;
    }
    const figures = slides.map((slide, index) => {
      const frame = document.createElement("iframe");
      // An empty sandbox: no scripts, no forms, no same-origin access. The slide can only be looked at.
      frame.setAttribute("sandbox", "");
      frame.setAttribute("tabindex", "-1");
      frame.title = `Slide ${index + 1} of ${slides.length}`;
      frame.width = String(SLIDE_WIDTH);
      frame.height = String(SLIDE_HEIGHT);
      frame.srcdoc = slideDocument(slide.html, deck.css);
      const stage = el("div", { className: "slide-stage" }, frame);
      resizer.observe(stage);
      return el(
        "figure",
        { className: "slide", dataset: { slideId: slide.slide_id || "" } },
        stage,
        el("figcaption", { text: `Slide ${index + 1}` }),
      );
    });
    ui.deck.replaceChildren(...figures);
  }

  async function exportDeck(format) {
    const session = state.current;
    if (!session) return;
    const label = format.toUpperCase();
    ui.exportStatus.textContent = `Making the ${label}…`;
    try {
      // Not a plain link to GET …/export: deployed, that needs the bearer token, which a link cannot carry.
      // POST …/export answers a presigned download_url that needs none.
      const made = await api("POST", `sessions/${enc(session.session_id)}/export`, { format });
      const url = new URL(made.download_url, location.href);
      if (!["https:", "http:"].includes(url.protocol)) throw new Error("the download link is not http(s)");
      const size = made.size_bytes ? ` (${Math.max(1, Math.round(made.size_bytes / 1024))} KB)` : "";
      const link = el("a", { href: url.href, text: `Download the ${label}${size}` });
      ui.exportStatus.replaceChildren(link, ` · the link works until ${when(made.expires_at)}`);
      ui.exportStatus.dataset.exportId = made.export_id || "";
      link.click(); // the file is an attachment: the browser saves it and this page stays
    } catch (error) {
      ui.exportStatus.textContent = "";
      if (error.status !== 401) showProblem(error, `Exporting the ${label}`);
    }
  }

  // --- start ----------------------------------------------------------------------------------------

  async function start() {
    ui.loading.hidden = true;
    ui.auth.hidden = true;
    ui.app.hidden = false;
    showIdentity();
    await loadSessions();
    if (state.sessions.length) await selectSession(state.sessions[0].session_id);
    else renderCurrent();
  }

  async function boot() {
    await loadConfig();
    // Does this deployment need a token? Ask without one: a 401 says yes (locally the gateway lets us in).
    let needsToken = false;
    try {
      const probe = await fetch("sessions?limit=1", { headers: { Accept: "application/json" }, cache: "no-store" });
      needsToken = probe.status === 401;
    } catch (error) {
      ui.loading.textContent = "The API could not be reached. Reload the page to try again.";
      return;
    }
    if (!needsToken) {
      state.token = "";
      sessionStorage.removeItem(TOKEN_KEY);
    } else if (!state.token) {
      askForToken("");
      return;
    }
    await start();
  }

  ui.authForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = ui.token.value.trim().replace(/^Bearer\s+/i, "");
    if (!token) return;
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    ui.token.value = "";
    ui.notice.hidden = true;
    state.live = null; // a new socket, with the new token
    await start();
  });
  ui.signOut.addEventListener("click", () => askForToken("The token is forgotten."));
  ui.noticeClose.addEventListener("click", () => {
    ui.notice.hidden = true;
  });
  ui.newSession.addEventListener("click", createSession);
  let searchTimer = null;
  ui.search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => loadSessions(), 250);
  });
  ui.moreSessions.addEventListener("click", () => loadSessions({ more: true }));
  ui.rename.addEventListener("click", startRename);
  ui.renameForm.addEventListener("submit", saveRename);
  ui.renameCancel.addEventListener("click", cancelRename);
  ui.renameInput.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancelRename();
  });
  ui.remove.addEventListener("click", deleteSession);
  ui.composer.addEventListener("submit", send);
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.stop.addEventListener("click", stopRun);
  ui.exportPptx.addEventListener("click", () => exportDeck("pptx"));
  ui.exportPdf.addEventListener("click", () => exportDeck("pdf"));

  boot();
})();
