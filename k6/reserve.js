// POST /reserve under constant load: every iteration holds one ticket.
//
//   k6 run -e USER_TOKEN=... -e EVENT_ID=... k6/reserve.js        an existing event's "Floor"
//   k6 run -e JWT_SECRET=... k6/reserve.js                        its own event, its own fans
//
// Env: BASE_URL (http://127.0.0.1:8080), USER_TOKEN, EVENT_ID, CATEGORY (Floor), JWT_SECRET
// (signs what is not given; ticketd's dev default otherwise), ADMIN_TOKEN, VUS (10),
// DURATION (30s), P95_MS (200), RESERVES_PER_FAN (5). Without USER_TOKEN each VU plays one fan
// after another, a new one every RESERVES_PER_FAN holds, so that no fan passes ticketd's
// per-user reservation rate (60 a minute, 10 at once by default); with USER_TOKEN every request
// is that one fan's: run ticketd with RESERVE_RATE_PER_MINUTE=0 then, or 429s fail the checks.
//
// What passes: 201 with a `held` hold of 1 ticket, or 409 `sold_out`: once an existing event's
// stock is gone, sold_out is the right answer and the run goes on measuring it (counted in
// `sold_out`). Anything else (limit_exceeded, 503, ...) fails a check. When the script made the
// event itself, its stock (10,000,000, no per-user limit) cannot run out, so there a single
// sold_out fails the run too. A hold is never settled: it expires after RESERVATION_TTL.

import { check } from 'k6';
import { Counter } from 'k6/metrics';
import {
  body,
  CATEGORY,
  envInt,
  errorCode,
  eventSetup,
  explain,
  fanRotation,
  P95_MS,
  reserve,
  SUMMARY_TREND_STATS,
} from './lib.js';

const OWN_EVENT = !__ENV.EVENT_ID;
const OWN_EVENT_STOCK = 10000000;

const held = new Counter('held');
const soldOut = new Counter('sold_out');

const thresholds = {
  http_req_duration: [`p(95)<${P95_MS}`],
  checks: ['rate==1'],
};
if (OWN_EVENT) thresholds.sold_out = ['count==0'];

export const options = {
  vus: envInt('VUS', 10),
  duration: __ENV.DURATION || '30s',
  thresholds,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

export function setup() {
  return eventSetup('reserve', OWN_EVENT, OWN_EVENT_STOCK);
}

let fans;
let complaints = 0;

export default function (data) {
  if (!fans) fans = fanRotation(`k6-reserve-${data.run}-${__VU}`);
  const res = reserve(fans.token(), data.eventId, data.category, 1);
  fans.reserved();
  const hold = res.status === 201 ? body(res) : null;
  const isHeld = hold !== null && hold.status === 'held' && hold.qty === 1 && !!hold.reservation_id;
  const isSoldOut = res.status === 409 && errorCode(res) === 'sold_out';
  held.add(isHeld ? 1 : 0);
  soldOut.add(isSoldOut ? 1 : 0);
  const ok = check(res, { 'reserve: 201 held (or 409 sold_out)': () => isHeld || isSoldOut });
  if (!ok && complaints++ < 3) {
    const hint = res.status === 429 ? ' (one fan past its reservation rate: RESERVE_RATE_PER_MINUTE=0 on ticketd?)' : '';
    console.error(explain(res, `VU ${__VU} POST /reserve`) + hint);
  }
}
