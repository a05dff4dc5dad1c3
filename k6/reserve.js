// POST /reserve under constant load: every iteration holds one ticket.
//
//   k6 run -e USER_TOKEN=... -e EVENT_ID=... k6/reserve.js        an existing event, as one fan
//   k6 run -e JWT_SECRET=... k6/reserve.js                        its own event, its own fans
//
// Env: BASE_URL (http://127.0.0.1:8080), USER_TOKEN, EVENT_ID, CATEGORY, JWT_SECRET (signs what
// is not given; ticketd's dev default otherwise), ADMIN_TOKEN, VUS (10), DURATION (30s),
// P95_MS (200), RESERVES_PER_FAN (5).
//
// On an existing event (EVENT_ID), the iterations take the event's categories in turn, as
// GET /events/{id}/availability lists them, or CATEGORY alone when it is set. There a real
// fan's answers are all expected: 201 `held`, 409 `sold_out` (the stock is gone), 409
// `limit_exceeded` (the fan holds or bought the category's max_per_user) and 429
// `rate_limited` (one USER_TOKEN is one fan, and ticketd lets one fan reserve 60 times a
// minute, 10 at once, by default). The end-of-test summary counts each: `held`, `sold_out`,
// `limit_exceeded`, `rate_limited`. Anything else (401, 404, 503, ...) fails a check.
//
// Without USER_TOKEN each VU plays one fan after another, a new one every RESERVES_PER_FAN
// holds, so that no fan passes ticketd's per-user rate. Without EVENT_ID the script makes its
// own event (CATEGORY, default Floor: 10,000,000 tickets, no per-user limit) that cannot run
// out: there a single sold_out, limit_exceeded or rate_limited fails the run. A hold is never
// settled: it expires after RESERVATION_TTL.

import { check, fail } from 'k6';
import { Counter } from 'k6/metrics';
import {
  body,
  CATEGORY,
  envInt,
  errorCode,
  eventSetup,
  explain,
  fanRotation,
  getAvailability,
  P95_MS,
  reserve,
  SUMMARY_TREND_STATS,
} from './lib.js';

const OWN_EVENT = !__ENV.EVENT_ID;
const OWN_EVENT_STOCK = 10000000;

const held = new Counter('held');
const soldOut = new Counter('sold_out');
const limitExceeded = new Counter('limit_exceeded');
const rateLimited = new Counter('rate_limited');

const thresholds = {
  http_req_duration: [`p(95)<${P95_MS}`],
  checks: ['rate==1'],
};
if (OWN_EVENT) {
  thresholds.sold_out = ['count==0'];
  thresholds.limit_exceeded = ['count==0'];
  thresholds.rate_limited = ['count==0'];
}

export const options = {
  vus: envInt('VUS', 10),
  duration: __ENV.DURATION || '30s',
  thresholds,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

// The categories of an existing event, from its availability, unless CATEGORY names one.
function eventCategories(eventId) {
  if (__ENV.CATEGORY) return [__ENV.CATEGORY];
  const res = getAvailability(eventId);
  const parsed = res.status === 200 ? body(res) : null;
  const names = parsed && Array.isArray(parsed.categories) ? parsed.categories.map((c) => c.name) : [];
  if (names.length === 0) fail(`event ${eventId} has no category to reserve: ${explain(res, 'GET availability')}`);
  return names;
}

export function setup() {
  const data = eventSetup('reserve', OWN_EVENT, OWN_EVENT_STOCK);
  data.categories = OWN_EVENT ? [CATEGORY] : eventCategories(data.eventId);
  console.log(`reserving in ${JSON.stringify(data.categories)} of event ${data.eventId}`);
  return data;
}

let fans;
let complaints = 0;

export default function (data) {
  if (!fans) fans = fanRotation(`k6-reserve-${data.run}-${__VU}`);
  const category = data.categories[__ITER % data.categories.length];
  const res = reserve(fans.token(), data.eventId, category, 1, [201, 409, 429]);
  fans.reserved();
  const hold = res.status === 201 ? body(res) : null;
  const code = res.status === 409 || res.status === 429 ? errorCode(res) : null;
  const outcomes = {
    held: hold !== null && hold.status === 'held' && hold.qty === 1 && !!hold.reservation_id,
    sold_out: res.status === 409 && code === 'sold_out',
    limit_exceeded: res.status === 409 && code === 'limit_exceeded',
    rate_limited: res.status === 429 && code === 'rate_limited',
  };
  held.add(outcomes.held ? 1 : 0);
  soldOut.add(outcomes.sold_out ? 1 : 0);
  limitExceeded.add(outcomes.limit_exceeded ? 1 : 0);
  rateLimited.add(outcomes.rate_limited ? 1 : 0);
  const ok = check(res, {
    'reserve: 201 held, 409 sold_out or limit_exceeded, 429 rate_limited': () => Object.values(outcomes).some((o) => o),
  });
  if (!ok && complaints++ < 3) console.error(explain(res, `VU ${__VU} POST /reserve ${category}`));
}
