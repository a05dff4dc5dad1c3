// Shared by the k6 scenarios: settings from the environment, HS256 tokens, request helpers and
// the setup steps (an event with one category of its own).
//
// Tokens are signed here, with k6/crypto, exactly as ticketd expects them: HS256 over
// base64url(header) "." base64url(claims), without padding, claims `sub`, `role`, `iat`, `exp`.

import http from 'k6/http';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { fail } from 'k6';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const CATEGORY = __ENV.CATEGORY || 'Floor';

/** ticketd's own default when JWT_SECRET is unset (`cargo run` warns and uses it). */
const DEV_SECRET = 'dev-secret';
/** Tokens outlive any run; ticketd tolerates 5 s of clock skew on `exp`. */
const TOKEN_TTL_SECS = 3600;

/** Trend statistics of every summary (p99 is not in k6's default list). */
export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

/** A positive integer from the environment, or `fallback`; anything else stops the script. */
export function envInt(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, not ${JSON.stringify(raw)}`);
  }
  return value;
}

/** The p(95) bound of the latency thresholds, in ms (P95_MS, default 200). */
export const P95_MS = envInt('P95_MS', 200);

export function jwtSecret() {
  return __ENV.JWT_SECRET || DEV_SECRET;
}

/** Warns once, from setup(), when the scripts sign with ticketd's development secret. */
export function warnIfDevSecret() {
  if (!__ENV.JWT_SECRET) {
    console.warn(`JWT_SECRET is unset: signing tokens with ticketd's development secret "${DEV_SECRET}"`);
  }
}

const JWT_HEADER = encoding.b64encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' }), 'rawurl');

/** An HS256 token for `sub` with `role` ('admin' | 'user'), valid for `ttlSecs` from now. */
export function makeToken(role, sub, secret = jwtSecret(), ttlSecs = TOKEN_TTL_SECS) {
  const iat = Math.floor(Date.now() / 1000);
  const claims = encoding.b64encode(JSON.stringify({ sub, role, iat, exp: iat + ttlSecs }), 'rawurl');
  const signingInput = `${JWT_HEADER}.${claims}`;
  return `${signingInput}.${crypto.hmac('sha256', secret, signingInput, 'base64rawurl')}`;
}

/** ADMIN_TOKEN if given, else one signed with JWT_SECRET. */
export function adminToken() {
  return __ENV.ADMIN_TOKEN || makeToken('admin', 'k6-admin');
}

/** USER_TOKEN if given (every VU is then the same fan), else one signed for `sub`. */
export function userToken(sub) {
  return __ENV.USER_TOKEN || makeToken('user', sub);
}

/**
 * Fans a VU plays in turn: a new fan (sub `<prefix>-<n>`, token of its own) every
 * RESERVES_PER_FAN reserves (default 5), so that no fan passes ticketd's per-user reservation
 * rate (RESERVE_RATE_PER_MINUTE, RESERVE_BURST: 60 a minute, 10 at once by default) and the
 * load looks like many fans, not one fan clicking a thousand times a second. With USER_TOKEN
 * every VU is that one fan (run ticketd with RESERVE_RATE_PER_MINUTE=0 then, or get 429s).
 */
export function fanRotation(prefix, reservesPerFan = envInt('RESERVES_PER_FAN', 5)) {
  let fan = 0;
  let reserves = 0;
  let token = null;
  return {
    token() {
      if (token === null) token = userToken(`${prefix}-${fan}`);
      return token;
    },
    /** Call after each reserve attempt: the fan moves on once it made its share. */
    reserved() {
      reserves += 1;
      if (reserves >= Math.max(1, reservesPerFan) && !__ENV.USER_TOKEN) {
        fan += 1;
        reserves = 0;
        token = null;
      }
    },
  };
}

/** A short id of this run, so fans and events of two runs never share a name. */
export function runId() {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}

/**
 * Request parameters: bearer token (if any), JSON body, a `name` tag (thresholds and the
 * summary can select one endpoint), the statuses k6 counts as not failed, and any other
 * headers (`Admission`, ...).
 */
export function params(token, name, expected, extraHeaders = {}) {
  const headers = { 'Content-Type': 'application/json', ...extraHeaders };
  if (token) headers.Authorization = `Bearer ${token}`;
  const out = { headers, tags: { name } };
  if (expected) out.responseCallback = http.expectedStatuses(...expected);
  return out;
}

/** The parsed JSON body, or null (empty, not JSON, or discarded). */
export function body(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

/** `error.code` of an error answer, or null. */
export function errorCode(res) {
  const parsed = body(res);
  return parsed && parsed.error && typeof parsed.error.code === 'string' ? parsed.error.code : null;
}

/** "POST /reserve -> 503 {...}": for logs, the body cut short. */
export function explain(res, what) {
  const text = typeof res.body === 'string' ? res.body.slice(0, 300) : '';
  return `${what} -> ${res.status}${res.error ? ` (${res.error})` : ''} ${text}`;
}

/** POST /reserve; `extra` may carry `headers` (an `Admission`) and a `name` tag of its own. */
export function reserve(token, eventId, category, qty = 1, expected = [201, 409], extra = {}) {
  return http.post(
    `${BASE_URL}/reserve`,
    JSON.stringify({ event_id: eventId, category, qty }),
    params(token, extra.name || 'reserve', expected, extra.headers),
  );
}

export function settle(token, reservationId, paymentOk) {
  return http.post(
    `${BASE_URL}/confirm`,
    JSON.stringify({ reservation_id: reservationId, payment_ok: paymentOk }),
    params(token, paymentOk ? 'confirm' : 'cancel', [200]),
  );
}

export function getAvailability(eventId) {
  return http.get(`${BASE_URL}/events/${eventId}/availability`, params(null, 'availability', [200]));
}

/** The counters of one category, from GET /events/{id}/availability, or null. */
export function categoryCounters(eventId, category = CATEGORY) {
  const res = getAvailability(eventId);
  const parsed = res.status === 200 ? body(res) : null;
  if (!parsed || !Array.isArray(parsed.categories)) {
    console.error(explain(res, `GET /events/${eventId}/availability`));
    return null;
  }
  return parsed.categories.find((c) => c.name === category) || null;
}

/**
 * setup(): a new event with one category, as the admin. `maxPerUser` null means no limit.
 * Stops the run (k6 exits non-zero) if the server refuses.
 */
export function createEventWithCategory({ name, stock, price = 49.99, maxPerUser = null, category = CATEGORY }) {
  const admin = adminToken();
  const created = http.post(
    `${BASE_URL}/events`,
    JSON.stringify({ name, date: '2030-06-01T20:00:00Z', venue: 'k6 Arena' }),
    params(admin, 'setup', [201]),
  );
  const event = created.status === 201 ? body(created) : null;
  if (!event || !event.id) fail(explain(created, 'POST /events'));

  const spec = { name: category, total_stock: stock, price };
  if (maxPerUser !== null) spec.max_per_user = maxPerUser;
  const added = http.post(
    `${BASE_URL}/events/${event.id}/ticket-category`,
    JSON.stringify(spec),
    params(admin, 'setup', [201]),
  );
  if (added.status !== 201) fail(explain(added, `POST /events/${event.id}/ticket-category`));
  return { eventId: event.id, category };
}

// setup() of a scenario that runs on EVENT_ID, or on an event of its own with `stock` tickets.
export function eventSetup(scenario, ownEvent, stock) {
  if (!__ENV.USER_TOKEN || ownEvent) warnIfDevSecret();
  const run = runId();
  if (!ownEvent) return { run, eventId: __ENV.EVENT_ID, category: CATEGORY };
  const { eventId, category } = createEventWithCategory({ name: `k6 ${scenario} ${run}`, stock });
  return { run, eventId, category };
}
