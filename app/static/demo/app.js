// The demo browser app: logs in in cookie mode, calls the API with the access token, and
// renews it through the HttpOnly refresh cookie when it has expired.
"use strict";

// The access token lives in this variable only: never in localStorage, sessionStorage or a
// cookie, where any script of this origin could read it long after this page is gone.
let accessToken = null;
let expiresAt = 0; // when the access token expires, in ms since the epoch
let refreshing = null; // the refresh in flight: every call of this tab waits for the same one
// Bumped by every logout: an answer to a request made before it is dropped, not shown (a
// refresh in flight must not bring a token back, nor a late list the last user's notes).
let generation = 0;

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    super(body.error_description || body.error || `The server answered ${status}.`);
    this.status = status;
    this.error = body.error;
  }
}

// -- talking to the API ---------------------------------------------------------------------

// The readable half of the double submit; the refresh cookie itself is out of our reach.
function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrf_token="));
  return cookie ? decodeURIComponent(cookie.slice("csrf_token=".length)) : null;
}

function send(method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(path, init); // same origin: the browser sends the cookies of the path
}

async function parse(response) {
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function accept(tokens) {
  accessToken = tokens.access_token;
  expiresAt = Date.now() + tokens.expires_in * 1000;
  showExpiry();
}

// A new access token through the cookie. Single flight: calls that find the token expired
// at the same moment share one refresh instead of racing the cookie's rotation.
function refresh() {
  if (!refreshing) {
    refreshing = renew().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function renew() {
  const csrf = csrfToken();
  // the two cookies come and go together: without this one there is no session left
  if (csrf === null) throw new ApiError(401, { error_description: "Logged out: log in again." });
  const headers = { "X-CSRF-Token": csrf };
  const started = generation;
  const tokens = await parse(await send("POST", "/auth/refresh", { body: {}, headers }));
  if (started !== generation) throw new ApiError(401, { error_description: "Logged out." });
  accept(tokens);
}

function expired(response) {
  const challenge = response.headers.get("WWW-Authenticate") ?? "";
  return response.status === 401 && challenge.includes('error="invalid_token"');
}

// A resource call with the access token; if it has expired, one refresh and one retry.
async function api(method, path, body) {
  const call = () => {
    const headers = { Authorization: `Bearer ${accessToken}` };
    return send(method, path, { body, headers });
  };
  const used = accessToken;
  let response = await call();
  if (expired(response)) {
    // another call may have renewed it meanwhile: then the retry needs no refresh
    if (accessToken === used) await refresh();
    response = await call();
  }
  return parse(response);
}

// -- what the buttons do --------------------------------------------------------------------

async function logIn(username, password) {
  const body = { username, password, token_delivery: "cookie" };
  accept(await parse(await send("POST", "/auth/login", { body })));
  await showAccount();
}

async function register(username, password) {
  await parse(await send("POST", "/auth/register", { body: { username, password } }));
  await logIn(username, password);
  say(`Account ${username} created.`);
}

async function logOut() {
  const csrf = csrfToken(); // none: already logged out (in another tab, say)
  if (csrf !== null) {
    // the cookie says which session; the header proves this page is of this origin
    await parse(await send("POST", "/auth/logout", { headers: { "X-CSRF-Token": csrf } }));
  }
  showLogin("Logged out.");
}

async function addNote(title, body) {
  await api("POST", "/api/notes", { title, body });
  await loadNotes();
  say("Note added.");
}

async function endSession(id, current) {
  await api("DELETE", `/auth/sessions/${encodeURIComponent(id)}`);
  if (current) {
    showLogin("This session has ended.");
  } else {
    await loadSessions();
    say("Session ended.");
  }
}

// On load: a session left by an earlier visit or another tab resumes through the cookie.
// Refused (401): nothing to resume, just the form. Anything else (a 503, no network) leaves
// the session as it is: offer to try again rather than a login that would start another.
async function resume() {
  $("retry").hidden = true;
  $("loading-text").textContent = "Resuming your session…";
  try {
    await refresh();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return showLogin();
    $("loading-text").textContent = `Could not resume your session: ${error.message}`;
    $("retry").hidden = false;
    return;
  }
  await showAccount();
}

// Runs an action, showing what went wrong; a 401 means no usable login is left.
async function run(action) {
  say("");
  try {
    await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showLogin(error.message, true);
    } else {
      say(error.message, true);
    }
  }
}

// -- showing it -----------------------------------------------------------------------------

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text; // never innerHTML: notes are user input
  if (className) node.className = className;
  return node;
}

// The browser's name rather than a user agent that fills the column (that one on hover);
// the order matters: Edge's names Chrome and Safari too, Chrome's names Safari
const DEVICES = [
  ["Edg/", "Edge"],
  ["Firefox/", "Firefox"],
  ["HeadlessChrome/", "Headless Chrome"],
  ["Chrome/", "Chrome"],
  ["Safari/", "Safari"],
  ["curl/", "curl"],
];

function device(agent) {
  return DEVICES.find(([mark]) => agent.includes(mark))?.[1] ?? agent;
}

function when(iso) {
  const format = { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
  return new Date(iso).toLocaleString([], format);
}

function showLogin(message = "", isError = false) {
  generation += 1;
  accessToken = null;
  expiresAt = 0;
  $("loading").hidden = true;
  $("app").hidden = true;
  $("login").hidden = false;
  // nothing of the last account stays in the page, hidden or not
  $("notes").replaceChildren();
  $("sessions").replaceChildren();
  $("note-form").reset();
  for (const id of ["me-username", "me-id", "me-scope", "me-session", "expiry"]) {
    $(id).textContent = "";
  }
  say(message, isError);
}

// Logged in: the account's view at once, then what it holds. A failure to load (a 503)
// leaves the view and its Reload button, never a second login.
async function showAccount() {
  $("loading").hidden = true;
  $("login").hidden = true;
  $("app").hidden = false;
  await loadAll();
}

async function loadAll() {
  await Promise.all([loadMe(), loadNotes(), loadSessions()]);
}

async function loadMe() {
  const started = generation;
  const me = await api("GET", "/api/me");
  if (started !== generation) return;
  $("me-username").textContent = me.username;
  $("me-id").textContent = me.id;
  $("me-scope").textContent = me.scope;
  $("me-session").textContent = me.session_id;
}

function showExpiry() {
  const node = $("expiry");
  node.dataset.expiresAt = String(expiresAt);
  if (!accessToken) return;
  const at = new Date(expiresAt).toLocaleTimeString();
  const left = Math.round((expiresAt - Date.now()) / 1000);
  node.textContent = left > 0
    ? `expires at ${at} (in ${left} s)`
    : `expired at ${at}: renewed through the cookie on the next call`;
  node.classList.toggle("expired", left <= 0);
}

async function loadNotes() {
  const started = generation;
  const { notes } = await api("GET", "/api/notes");
  if (started !== generation) return;
  const items = notes.map((note) => {
    const item = element("li");
    item.append(element("strong", note.title), element("time", when(note.created_at)));
    if (note.body) item.append(element("p", note.body));
    return item;
  });
  $("notes").replaceChildren(...(items.length ? items : [element("li", "No notes yet.", "empty")]));
}

const SESSIONS_SHOWN = 200; // the API's largest page

async function loadSessions() {
  const started = generation;
  const page = await api("GET", `/auth/sessions?limit=${SESSIONS_SHOWN}`);
  if (started !== generation) return;
  const rows = page.sessions.map((session) => {
      const row = element("tr", undefined, session.current ? "current" : "");
      const agent = element("td", session.user_agent ? device(session.user_agent) : "unknown");
      agent.title = session.user_agent ?? "";
      if (session.current) agent.append(element("span", "this browser", "badge"));
      const end = element("button", "End", "secondary");
      end.type = "button";
      end.addEventListener("click", () => run(() => endSession(session.id, session.current)));
      const cell = element("td");
      cell.append(end);
      row.append(
        element("td", when(session.created_at)),
        element("td", when(session.last_used_at)),
        agent,
        element("td", session.ip ?? ""),
        cell,
      );
      return row;
    });
  if (page.next_cursor) {
    // more than a page: say so rather than let the rest look like nothing
    const more = element("td", `Only the newest ${SESSIONS_SHOWN} are shown.`, "empty");
    more.colSpan = 5;
    const row = element("tr");
    row.append(more);
    rows.push(row);
  }
  $("sessions").replaceChildren(...rows);
}

// -- wiring ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  const login = $("login");
  login.addEventListener("submit", (event) => {
    event.preventDefault();
    const { username, password } = login.elements;
    run(async () => {
      await logIn(username.value, password.value);
      password.value = "";
    });
  });
  $("register").addEventListener("click", () => {
    const { username, password } = login.elements;
    if (!login.reportValidity()) return;
    run(async () => {
      await register(username.value, password.value);
      password.value = "";
    });
  });
  const noteForm = $("note-form");
  noteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const { title, body } = noteForm.elements;
    run(async () => {
      await addNote(title.value, body.value);
      noteForm.reset();
    });
  });
  $("logout").addEventListener("click", () => run(logOut));
  $("reload-sessions").addEventListener("click", () => run(loadAll));
  $("retry").addEventListener("click", () => run(resume));
  setInterval(showExpiry, 1000);
  run(resume);
});
