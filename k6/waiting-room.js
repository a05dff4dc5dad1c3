// A flash sale behind a waiting room: FANS distinct fans join one event's queue at once for
// STOCK tickets; each follows its place, reserves with its admission once admitted, and pays,
// so that no hold is left to come back.
//
//   k6 run -e JWT_SECRET=... k6/waiting-room.js                       # 50,000 fans, 500 tickets
//   k6 run -e JWT_SECRET=... -e FANS=300 -e STOCK=30 -e VUS=30 k6/waiting-room.js
//
// Env: BASE_URL (http://127.0.0.1:8080), JWT_SECRET, FANS (50000), STOCK (500),
// VUS (20; see below), ADMIT_PER_SECOND (100), ADMISSION_TTL (60 s), OPENS_IN (0 s: the
// room admits at once; more: it opens that long after setup, and fans who joined before are
// drawn into a random order, as when fans gather before an on-sale), POLL_MIN_MS (1000),
// POLL_MAX_MS (5000), PROBE_EVERY (100), MAX_WAIT (480 s), P99_MS (50).
//
// Fans poll GET /events/{id}/queue/me rather than follow the event stream: k6 has no
// Server-Sent Events client (a stream read with http.get returns only when the stream ends,
// which is after the admission, and would hold a VU per fan). A fan polls again after half
// the `eta_seconds` the room gave it, at least POLL_MIN_MS and at most POLL_MAX_MS later,
// +-20 % so that fans who joined together do not poll together: a fan near the head learns of
// its admission within a second, one far back asks every 5 s, and sold out reaches every fan
// within 5 s. 50,000 fans thus ask at most 10,000 times a second, and far less once most of
// them are told sold out. (The stream is exercised by monitoring/dashboard_load.py and the
// API tests.)
//
// Each VU plays fans VU-1, VU-1+VUS, ... in turn: first it joins all of them, then it polls
// each when due, until every one has ended. VUs are not fans but requests in flight: the fans
// join as fast as k6 can send, whatever VUS is, and where k6 is the bottleneck (it is on a
// 2-core machine it shares with ticketd) more VUs only queue inside k6, and the latency it
// measures grows with them (docs/benchmarks.md: /reserve p99 21 ms with 20 VUs, 614 ms with
// 1,000, every reserve answered by ticketd within 0.5 ms either way). Every PROBE_EVERY-th fan first tries /reserve
// without an admission and must be refused (403 not_admitted). The run passes only if
//   - exactly STOCK fans got 201 on /reserve (`reserved`) and paid (`paid`); teardown reads
//     availability: available 0, held 0, sold STOCK (`final_*`);
//   - every fan ended `admitted` or `sold_out` (`fans_ended` == FANS, `ended_other` == 0),
//     nothing unexpected came back (`unexpected` == 0), no reserve without an admission got
//     through (`probe_let_through` == 0);
//   - the fans k6 saw admitted are exactly the admissions ticketd counted for the event
//     (`waiting_room_admitted_total{event}` on BASE_URL/metrics, read in teardown:
//     `admissions_unaccounted` == 0): nobody was admitted twice or unseen; and the holds k6
//     made, each with its fan's admission, are exactly the tickets sold (`holds_unaccounted`
//     == 0): no hold without an admission;
//   - p(99) of /reserve (with an admission) is under P99_MS, and of the probes too, as k6
//     measures it; and as ticketd measures it: 99 % of the run's /reserve within 50 ms by its
//     `http_request_duration_seconds{function="reserve"}` (`server_reserve_within_50ms`).
//     Where k6 shares the cores with ticketd, its figure counts its own waits for a core too.
// One ticketd (or a set behind one /metrics) serves the run: the admissions are counted there.
// A broken threshold makes k6 exit 99.

import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import { Counter, Gauge } from 'k6/metrics';
import {
  BASE_URL, SUMMARY_TREND_STATS, adminToken, body, categoryCounters, createEventWithCategory,
  envInt, errorCode, explain, makeToken, params, reserve, runId, settle, warnIfDevSecret,
} from './lib.js';

const FANS = envInt('FANS', 50000);
const STOCK = envInt('STOCK', 500);
const VUS = Math.max(1, Math.min(envInt('VUS', 20), FANS));
const ADMIT_PER_SECOND = envInt('ADMIT_PER_SECOND', 100);
const ADMISSION_TTL = envInt('ADMISSION_TTL', 60);
const OPENS_IN = envInt('OPENS_IN', 0);
const POLL_MIN_MS = envInt('POLL_MIN_MS', 1000);
const POLL_MAX_MS = Math.max(POLL_MIN_MS, envInt('POLL_MAX_MS', 5000));
const PROBE_EVERY = envInt('PROBE_EVERY', 100);
const MAX_WAIT = envInt('MAX_WAIT', 480);
const P99_MS = envInt('P99_MS', 50);
if (STOCK < 1 || FANS < STOCK) {
  throw new Error(`need 1 <= STOCK <= FANS, got STOCK=${STOCK} FANS=${FANS}`);
}

const reserved = new Counter('reserved');
const paid = new Counter('paid');
const admittedFans = new Counter('admitted_fans');
const admittedTooLate = new Counter('admitted_too_late'); // admitted, then 409 sold_out
const fansEnded = new Counter('fans_ended');
const endedAdmitted = new Counter('ended_admitted');
const endedSoldOut = new Counter('ended_sold_out');
const endedOther = new Counter('ended_other');
const unexpected = new Counter('unexpected');
const probeRefused = new Counter('probe_refused');
const probeLetThrough = new Counter('probe_let_through');
const polls = new Counter('polls');
// +1 for each fan k6 saw admitted (each 201), minus ticketd's count in teardown.
const admissionsUnaccounted = new Counter('admissions_unaccounted');
const holdsUnaccounted = new Counter('holds_unaccounted');
const serverAdmitted = new Gauge('server_admitted');
const serverReserveWithin50ms = new Gauge('server_reserve_within_50ms');
const finalAvailable = new Gauge('final_available');
const finalHeld = new Gauge('final_held');
const finalSold = new Gauge('final_sold');

export const options = {
  scenarios: {
    waiting_room: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: 1,
      maxDuration: `${OPENS_IN + MAX_WAIT + 30}s`,
    },
  },
  thresholds: {
    reserved: [`count==${STOCK}`],
    paid: [`count==${STOCK}`],
    fans_ended: [`count==${FANS}`],
    ended_other: ['count==0'],
    unexpected: ['count==0'],
    probe_let_through: ['count==0'],
    admissions_unaccounted: ['count==0'],
    holds_unaccounted: ['count==0'],
    final_available: ['value==0'],
    final_held: ['value==0'],
    final_sold: [`value==${STOCK}`],
    server_reserve_within_50ms: ['value>=0.99'],
    checks: ['rate==1'],
    'http_req_duration{name:reserve}': [`p(99)<${P99_MS}`],
    'http_req_duration{name:reserve-unadmitted}': [`p(99)<${P99_MS}`],
  },
  summaryTrendStats: SUMMARY_TREND_STATS,
};

/**
 * From ticketd's /metrics: `waiting_room_admitted_total` of the event, and how many /reserve
 * it answered in all and within 50 ms (0 for a series not there yet).
 */
function serverCounts(eventId) {
  const res = http.get(`${BASE_URL}/metrics`, params(null, 'metrics', [200]));
  if (res.status !== 200) fail(explain(res, 'GET /metrics'));
  const lines = res.body.split('\n');
  const value = (prefix) => {
    const line = lines.find((l) => l.startsWith(prefix));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  return {
    admitted: value(`waiting_room_admitted_total{event="${eventId}"} `),
    reserves: value('http_request_duration_seconds_count{function="reserve"} '),
    reservesWithin50ms: value('http_request_duration_seconds_bucket{function="reserve",le="0.05"} '),
  };
}

export function setup() {
  warnIfDevSecret();
  const run = runId();
  const { eventId, category } = createEventWithCategory({ name: `k6 waiting room ${run}`, stock: STOCK, maxPerUser: 1 });
  const room = { enabled: true, admit_per_second: ADMIT_PER_SECOND, admission_ttl: ADMISSION_TTL };
  if (OPENS_IN > 0) room.opens_at = new Date(Date.now() + OPENS_IN * 1000).toISOString();
  const res = http.put(
    `${BASE_URL}/events/${eventId}/waiting-room`,
    JSON.stringify(room),
    params(adminToken(), 'setup', [200]),
  );
  if (res.status !== 200) fail(explain(res, `PUT /events/${eventId}/waiting-room`));
  return { run, eventId, category, before: serverCounts(eventId) };
}

let complaints = 0;
function complain(res, what) {
  unexpected.add(1);
  if (complaints++ < 5) console.error(explain(res, `VU ${__VU} ${what}`));
}

function end(fan, how) {
  fan.ended = how;
  fansEnded.add(1);
  endedAdmitted.add(how === 'admitted' ? 1 : 0);
  endedSoldOut.add(how === 'sold_out' ? 1 : 0);
  endedOther.add(how === 'admitted' || how === 'sold_out' ? 0 : 1);
}

/** When the fan asks again: half the room's estimate, within the bounds, +-20 %. */
function nextPoll(place) {
  const wait = Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, (place.eta_seconds * 1000) / 2));
  return Date.now() + wait * (0.8 + Math.random() * 0.4);
}

/** The admitted fan reserves one ticket with its admission and pays for it. */
function buy(data, fan, place) {
  admittedFans.add(1);
  admissionsUnaccounted.add(1);
  const res = reserve(fan.token, data.eventId, data.category, 1, [201, 409], {
    headers: { Admission: place.admission },
  });
  if (res.status === 409 && errorCode(res) === 'sold_out') {
    admittedTooLate.add(1); // two admitted per ticket: some find the tickets gone
    return end(fan, 'admitted');
  }
  const hold = res.status === 201 ? body(res) : null;
  if (!check(res, { 'reserve with an admission: 201 held (or 409 sold_out)': () => hold !== null && hold.status === 'held' })) {
    complain(res, 'POST /reserve (admitted)');
    return end(fan, 'admitted');
  }
  reserved.add(1);
  holdsUnaccounted.add(1);
  const receipt = settle(fan.token, hold.reservation_id, true);
  const confirmed = receipt.status === 200 && (body(receipt) || {}).status === 'confirmed';
  if (check(receipt, { 'confirm: 200 confirmed': () => confirmed })) paid.add(1);
  else complain(receipt, 'POST /confirm');
  return end(fan, 'admitted');
}

/** Acts on what the room said of the fan: wait, buy, or stop. */
function follow(data, fan, res, what) {
  const place = res.status === 200 || res.status === 201 ? body(res) : null;
  if (place === null || typeof place.status !== 'string') {
    complain(res, what);
    return end(fan, 'error');
  }
  switch (place.status) {
    case 'waiting':
      if (fan.probe) {
        fan.probe = false;
        const probe = reserve(fan.token, data.eventId, data.category, 1, [403], { name: 'reserve-unadmitted' });
        const refused = probe.status === 403 && errorCode(probe) === 'not_admitted';
        probeRefused.add(refused ? 1 : 0);
        probeLetThrough.add(probe.status === 201 ? 1 : 0);
        if (!check(probe, { 'reserve without an admission: 403 not_admitted': () => refused })) {
          complain(probe, 'POST /reserve (not admitted)');
        }
      }
      fan.next = nextPoll(place);
      return undefined;
    case 'admitted':
      return buy(data, fan, place);
    case 'sold_out':
      return end(fan, 'sold_out');
    default: // `expired`: the fan reserves the moment it is admitted, so never
      complain(res, `${what}: status ${place.status}`);
      return end(fan, place.status);
  }
}

export default function (data) {
  const fans = [];
  for (let n = __VU - 1; n < FANS; n += VUS) {
    fans.push({
      token: makeToken('user', `wr-${data.run}-${n}`),
      probe: PROBE_EVERY > 0 && n % PROBE_EVERY === 0,
      next: 0,
      ended: null,
    });
  }
  const queue = `${BASE_URL}/events/${data.eventId}/queue`;
  for (const fan of fans) {
    const res = http.post(queue, null, params(fan.token, 'join', [201]));
    if (!check(res, { 'join: 201': (r) => r.status === 201 })) complain(res, 'POST queue');
    follow(data, fan, res, 'POST queue');
  }

  const giveUp = Date.now() + (OPENS_IN + MAX_WAIT) * 1000;
  let left = fans.filter((fan) => !fan.ended);
  while (left.length > 0 && Date.now() < giveUp) {
    for (const fan of left) {
      if (fan.next > Date.now()) continue;
      polls.add(1);
      follow(data, fan, http.get(`${queue}/me`, params(fan.token, 'queue-me', [200])), 'GET queue/me');
    }
    left = left.filter((fan) => !fan.ended);
    if (left.length > 0) {
      const soonest = Math.min(...left.map((fan) => fan.next));
      sleep(Math.max(0, soonest - Date.now()) / 1000);
    }
  }
  for (const fan of left) end(fan, 'still_waiting');
}

export function teardown(data) {
  const after = serverCounts(data.eventId);
  const admitted = after.admitted - data.before.admitted;
  serverAdmitted.add(admitted);
  admissionsUnaccounted.add(-admitted);
  const reserves = after.reserves - data.before.reserves;
  const within = after.reservesWithin50ms - data.before.reservesWithin50ms;
  serverReserveWithin50ms.add(reserves > 0 ? within / reserves : 0);
  const c = categoryCounters(data.eventId, data.category);
  check(c, { 'availability: category found': (v) => v !== null });
  if (c !== null) {
    finalAvailable.add(c.available);
    finalHeld.add(c.held);
    finalSold.add(c.sold);
    holdsUnaccounted.add(-(c.held + c.sold));
  }
  const line = `waiting room ${data.eventId}: ${JSON.stringify(c)}, ticketd admitted ${admitted} (stock ${STOCK}, fans ${FANS})`;
  if (c !== null && c.sold === STOCK && c.available === 0 && c.held === 0) console.log(line);
  else console.error(line);
}
