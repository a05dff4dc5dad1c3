// A day of sales: fans read availability, hold tickets, pay for some of their holds and
// cancel others, in realistic proportions (by default 60 % reads, 25 % reserves, 10 % confirms,
// 5 % cancels). Each VU plays one fan after another (a new one every RESERVES_PER_FAN = 5
// reserves, see fanRotation in lib.js); it settles only holds it made, oldest first, each
// with the token of the fan that made it. A settlement drawn while the VU holds nothing
// becomes a read.
//
//   k6 run -e JWT_SECRET=... k6/mixed.js
//   k6 run -e JWT_SECRET=... -e VUS=200 -e DURATION=20s k6/mixed.js
//
// Env: BASE_URL (http://127.0.0.1:8080), JWT_SECRET, USER_TOKEN (every VU the same fan),
// EVENT_ID + CATEGORY (Floor) to use an existing category, VUS (10), DURATION (30s),
// RESERVES_PER_FAN (5),
// MIX (reads,reserves,confirms,cancels in %: 60,25,10,5), THINK_MS (0: pause after each
// request), P95_MS (200), FAIL_RATE (0.01).
//
// Thresholds: p(95) < P95_MS; failed requests (http_req_failed) and failed checks each under
// FAIL_RATE; no answer contradicting the contract (`wrong`: a 2xx of the wrong shape or
// state, counters of a category that do not add up) and, on the script's own category
// (1,000,000 tickets), no sold_out. teardown() checks available + held + sold == total.
// The counters `holds`, `confirmed`, `cancelled` let a caller compare with the final
// `final_held` and `final_sold` gauges (k6/smoke.sh does).

import { check, sleep } from 'k6';
import { Counter, Gauge } from 'k6/metrics';
import {
  body,
  CATEGORY,
  categoryCounters,
  envInt,
  errorCode,
  eventSetup,
  explain,
  fanRotation,
  getAvailability,
  P95_MS,
  reserve,
  settle,
  SUMMARY_TREND_STATS,
} from './lib.js';

const OWN_EVENT = !__ENV.EVENT_ID;
const OWN_EVENT_STOCK = 1000000;
const THINK_MS = envInt('THINK_MS', 0);
const FAIL_RATE = Number(__ENV.FAIL_RATE || '0.01');
if (!(FAIL_RATE >= 0 && FAIL_RATE <= 1)) throw new Error(`FAIL_RATE must be in [0, 1], not ${__ENV.FAIL_RATE}`);

const MIX = (__ENV.MIX || '60,25,10,5').split(',').map(Number);
if (MIX.length !== 4 || MIX.some((p) => !(p >= 0)) || MIX.reduce((a, b) => a + b, 0) <= 0) {
  throw new Error(`MIX is reads,reserves,confirms,cancels in %, not ${__ENV.MIX}`);
}
const MIX_TOTAL = MIX.reduce((a, b) => a + b, 0);
const [READ_UPTO, RESERVE_UPTO, CONFIRM_UPTO] = [MIX[0], MIX[0] + MIX[1], MIX[0] + MIX[1] + MIX[2]];

const reads = new Counter('reads');
const holds = new Counter('holds');
const soldOut = new Counter('sold_out');
const confirmed = new Counter('confirmed');
const cancelled = new Counter('cancelled');
const wrong = new Counter('wrong');
const finalAvailable = new Gauge('final_available');
const finalHeld = new Gauge('final_held');
const finalSold = new Gauge('final_sold');
const finalTotal = new Gauge('final_total');

const thresholds = {
  http_req_duration: [`p(95)<${P95_MS}`],
  http_req_failed: [`rate<${FAIL_RATE}`],
  checks: [`rate>${1 - FAIL_RATE}`],
  wrong: ['count==0'],
};
if (OWN_EVENT) thresholds.sold_out = ['count==0'];

export const options = {
  scenarios: {
    mixed: { executor: 'constant-vus', vus: envInt('VUS', 10), duration: __ENV.DURATION || '30s' },
  },
  thresholds,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

export function setup() {
  return eventSetup('mixed', OWN_EVENT, OWN_EVENT_STOCK);
}

// Per VU: its fans, and the holds it made not yet settled ({id, token}), oldest first.
let fans;
const myHolds = [];
let complaints = 0;

function complain(res, what) {
  if (complaints++ < 3) console.error(explain(res, `VU ${__VU} ${what}`));
}

/** A 2xx that breaks the contract: counted in `wrong`, which must stay at 0. */
function contractHolds(res, what, holdsTrue) {
  wrong.add(holdsTrue ? 0 : 1);
  if (!holdsTrue) complain(res, `${what} (contradicts the contract)`);
}

function readAvailability(data) {
  const res = getAvailability(data.eventId);
  reads.add(1);
  if (check(res, { 'availability: 200': (r) => r.status === 200 })) {
    const parsed = body(res);
    const c = parsed && Array.isArray(parsed.categories) ? parsed.categories.find((x) => x.name === data.category) : null;
    contractHolds(res, 'GET availability', c !== null && c !== undefined
      && c.available >= 0 && c.held >= 0 && c.sold >= 0 && c.available + c.held + c.sold === c.total);
  } else {
    complain(res, 'GET availability');
  }
}

function holdOne(data) {
  const token = fans.token();
  const res = reserve(token, data.eventId, data.category, 1);
  fans.reserved();
  if (res.status === 201) {
    const hold = body(res);
    const isHeld = hold !== null && hold.status === 'held' && hold.qty === 1 && !!hold.reservation_id;
    contractHolds(res, 'POST /reserve', isHeld);
    if (isHeld) {
      myHolds.push({ id: hold.reservation_id, token });
      holds.add(1);
    }
  }
  const isSoldOut = res.status === 409 && errorCode(res) === 'sold_out';
  if (isSoldOut) soldOut.add(1);
  if (!check(res, { 'reserve: 201 (or 409 sold_out)': (r) => r.status === 201 || isSoldOut })) {
    complain(res, 'POST /reserve');
  }
}

function settleOldest(paymentOk) {
  const { id, token } = myHolds.shift();
  const res = settle(token, id, paymentOk);
  const want = paymentOk ? 'confirmed' : 'cancelled';
  if (check(res, { [`${paymentOk ? 'confirm' : 'cancel'}: 200`]: (r) => r.status === 200 })) {
    const receipt = body(res);
    const right = receipt !== null && receipt.status === want && receipt.reservation_id === id;
    contractHolds(res, `POST /confirm payment_ok=${paymentOk}`, right);
    if (right) (paymentOk ? confirmed : cancelled).add(1);
  } else {
    complain(res, `POST /confirm payment_ok=${paymentOk}`);
  }
}

export default function (data) {
  if (!fans) fans = fanRotation(`k6-mixed-${data.run}-${__VU}`);
  const draw = Math.random() * MIX_TOTAL;
  if (draw < READ_UPTO) readAvailability(data);
  else if (draw < RESERVE_UPTO) holdOne(data);
  else if (myHolds.length === 0) readAvailability(data);
  else settleOldest(draw < CONFIRM_UPTO);
  if (THINK_MS > 0) sleep((THINK_MS / 1000) * (0.5 + Math.random()));
}

export function teardown(data) {
  const c = categoryCounters(data.eventId, data.category);
  check(c, {
    'availability: available + held + sold == total': (v) => v !== null && v.available + v.held + v.sold === v.total,
  });
  if (c !== null) {
    finalAvailable.add(c.available);
    finalHeld.add(c.held);
    finalSold.add(c.sold);
    finalTotal.add(c.total);
  }
  console.log(`mixed ${data.eventId}/${data.category}: ${JSON.stringify(c)}`);
}
