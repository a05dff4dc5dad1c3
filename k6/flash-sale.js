// A flash sale: FANS distinct fans race, each once, for STOCK tickets of one new category.
//
//   k6 run -e JWT_SECRET=... k6/flash-sale.js
//   k6 run -e JWT_SECRET=... -e STOCK=50 -e FANS=200 -e VUS=20 k6/flash-sale.js
//
// Env: BASE_URL (http://127.0.0.1:8080), JWT_SECRET (signs the admin's and every fan's token),
// STOCK (500), FANS (5000, the iterations), VUS (200), MAX_DURATION (60s), PAY (1: each
// winner pays right away; 0: winners only hold), P95_MS (200). EVENT_ID (+ CATEGORY) runs the
// sale on an existing category instead; it must be untouched and its total must be STOCK.
//
// Each iteration is a new fan `fan-<run>-<vu>-<iter>` with a token of their own, asking for one
// ticket (at most one per fan in the category this script makes). The run passes only if
//   - exactly STOCK fans got 201 (`won`), and with PAY every one of them paid (`paid`);
//   - every other fan got 409 {"error":{"code":"sold_out"}} (`lost` == FANS - STOCK), nothing
//     else ever came back (`unexpected` == 0), and every fan was answered before MAX_DURATION;
//   - teardown() reads GET /events/{id}/availability: available == 0, held + sold == total
//     == STOCK (and sold == STOCK with PAY), also as gauges `final_*`;
//   - p(95) of the requests is under P95_MS.
// A broken threshold makes k6 exit 99.

import { check, fail } from 'k6';
import { Counter, Gauge } from 'k6/metrics';
import {
  CATEGORY, P95_MS, SUMMARY_TREND_STATS, body, categoryCounters, createEventWithCategory, envInt,
  errorCode, explain, makeToken, reserve, runId, settle, warnIfDevSecret,
} from './lib.js';

const STOCK = envInt('STOCK', 500);
const FANS = envInt('FANS', 5000);
const VUS = Math.max(1, Math.min(envInt('VUS', 200), FANS));
const PAY = __ENV.PAY !== '0';
if (STOCK < 1 || FANS < STOCK) {
  throw new Error(`need 1 <= STOCK <= FANS, got STOCK=${STOCK} FANS=${FANS}`);
}

const won = new Counter('won');
const lost = new Counter('lost');
const unexpected = new Counter('unexpected');
const paid = new Counter('paid');
const finalAvailable = new Gauge('final_available');
const finalHeld = new Gauge('final_held');
const finalSold = new Gauge('final_sold');
const finalTaken = new Gauge('final_taken'); // held + sold

const thresholds = {
  won: [`count==${STOCK}`],
  lost: [`count==${FANS - STOCK}`],
  unexpected: ['count==0'],
  final_available: ['value==0'],
  final_taken: [`value==${STOCK}`],
  checks: ['rate==1'],
  http_req_duration: [`p(95)<${P95_MS}`],
};
if (PAY) {
  thresholds.paid = [`count==${STOCK}`];
  thresholds.final_sold = [`value==${STOCK}`];
}

export const options = {
  scenarios: {
    flash_sale: {
      executor: 'shared-iterations',
      vus: VUS,
      iterations: FANS,
      maxDuration: __ENV.MAX_DURATION || '60s',
    },
  },
  thresholds,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

export function setup() {
  warnIfDevSecret();
  const run = runId();
  if (__ENV.EVENT_ID) {
    const counters = categoryCounters(__ENV.EVENT_ID, CATEGORY);
    if (!counters || counters.total !== STOCK || counters.available !== STOCK) {
      fail(`EVENT_ID ${__ENV.EVENT_ID}/${CATEGORY} must be untouched with total == STOCK (${STOCK}): ${JSON.stringify(counters)}`);
    }
    return { run, eventId: __ENV.EVENT_ID, category: CATEGORY };
  }
  const { eventId, category } = createEventWithCategory({ name: `k6 flash sale ${run}`, stock: STOCK, maxPerUser: 1 });
  return { run, eventId, category };
}

let complaints = 0;
function complain(res, what) {
  if (complaints++ < 3) console.error(explain(res, `VU ${__VU} ${what}`));
}

export default function (data) {
  const fan = makeToken('user', `fan-${data.run}-${__VU}-${__ITER}`);
  const res = reserve(fan, data.eventId, data.category, 1);
  const hold = res.status === 201 ? body(res) : null;
  const isHeld = hold !== null && hold.status === 'held' && hold.qty === 1 && !!hold.reservation_id;
  const isSoldOut = res.status === 409 && errorCode(res) === 'sold_out';
  // Every fan adds to all three counters, so each has samples even when it stays at 0.
  won.add(isHeld ? 1 : 0);
  lost.add(isSoldOut ? 1 : 0);
  unexpected.add(isHeld || isSoldOut ? 0 : 1);
  if (!check(res, { 'reserve: 201 held or 409 sold_out': () => isHeld || isSoldOut })) {
    complain(res, 'POST /reserve');
  }
  if (!isHeld || !PAY) return;

  const paidRes = settle(fan, hold.reservation_id, true);
  const receipt = paidRes.status === 200 ? body(paidRes) : null;
  const confirmed = receipt !== null && receipt.status === 'confirmed' && receipt.reservation_id === hold.reservation_id;
  paid.add(confirmed ? 1 : 0);
  if (!check(paidRes, { 'confirm: 200 confirmed': () => confirmed })) complain(paidRes, 'POST /confirm');
}

export function teardown(data) {
  const c = categoryCounters(data.eventId, data.category);
  const ok = check(c, {
    'availability: category found': (v) => v !== null,
    'availability: available == 0': (v) => v !== null && v.available === 0,
    'availability: held + sold == total == STOCK': (v) => v !== null && v.held + v.sold === v.total && v.total === STOCK,
    'availability: sold == STOCK when winners pay': (v) => v !== null && (!PAY || v.sold === STOCK),
  });
  if (c !== null) {
    finalAvailable.add(c.available);
    finalHeld.add(c.held);
    finalSold.add(c.sold);
    finalTaken.add(c.held + c.sold);
  }
  const line = `flash sale ${data.eventId}/${data.category}: ${JSON.stringify(c)} (stock ${STOCK}, fans ${FANS})`;
  if (ok) console.log(line);
  else console.error(line);
}
