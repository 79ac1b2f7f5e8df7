// A Node.js producer for the dispatcher, with ioredis.
//
//   cd examples/node && npm install       (installs ioredis)
//   REDIS_URL=redis://localhost:6379/0 node producer.js
//   node producer.js --print              (the jobs it would push; no Redis needed)
//
// It pushes one job per lead into the jobs stream, says which ids the dispatcher already
// knew (those are not dialled again, so it does not wait for them), and waits up to 60 s for
// the results of the new ones. The job format is docs/contracts.md (JSON Schema:
// docs/schemas/job.schema.json).
'use strict';

const NAMESPACE = process.env.DISPATCHER_NAMESPACE || 'dispatcher';
const KEY = (name) => `{${NAMESPACE}}:${name}`; // one hash tag: one Redis Cluster slot

// One job per lead. Optional fields are left out rather than set to null.
function buildJob(lead, campaign) {
  const job = {
    id: `crm-node-${lead.id}`,             // your key: one call per id, however often pushed
    to: lead.phone,                        // E.164, with + and the country code
    campaign,
    priority: lead.vip ? 'high' : 'normal',
    metadata: { name: lead.name, source: 'crm' }, // echoed in the result, at most 4 KiB
  };
  if (lead.callAfter) job.not_before = new Date(lead.callAfter).toISOString();
  if (lead.timezone) job.timezone = lead.timezone;
  return job;
}

const SAMPLE_LEADS = [
  { id: 1001, name: 'Ann', phone: '+14155550100', vip: true, timezone: 'America/Los_Angeles' },
  { id: 1002, name: 'Bob', phone: '+12125550101' },
  { id: 1003, name: 'Cyd', phone: '+442079460000', callAfter: '2026-06-01T09:00:00Z' },
];

function exampleJobs() {
  return SAMPLE_LEADS.map((lead) => buildJob(lead, 'spring-2026'));
}

// Push in one pipeline; the HEXISTS before each XADD tells whether a worker had already
// read a job with that id (it is then not dialled again). A job pushed a moment ago and not
// yet read is not known yet: the answer is advisory, the dispatcher's own dedupe is not.
async function push(redis, jobs) {
  const pipe = redis.pipeline();
  for (const job of jobs) {
    pipe.hexists(KEY('dormant'), job.id); // a job due much later sleeps packed in this hash
    pipe.hexists(KEY(`job:${job.id}`), 'owner');
    pipe.xadd(KEY('jobs'), '*', 'job', JSON.stringify(job));
  }
  const replies = await pipe.exec();
  const duplicates = jobs
    .filter((_, i) => replies[3 * i][1] === 1 || replies[3 * i + 1][1] === 1)
    .map((j) => j.id);
  return { pushed: jobs.length, duplicates };
}

// What to wait for after a push, and what to tell the user: an id already known is not
// dialled again, so waiting for a new result of it would only run into the timeout.
function plan(jobs, duplicates) {
  const known = new Set(duplicates);
  const wait = jobs.map((j) => j.id).filter((id) => !known.has(id));
  const lines = [];
  if (known.size) {
    lines.push(`already known (not dialled again; their results are in the results stream): ${[...known].join(', ')}`);
  }
  lines.push(wait.length ? `waiting up to 60 s for the results of ${wait.join(', ')}`
    : 'nothing new to wait for (change the ids to push new jobs)');
  return { wait, say: lines.join('\n') };
}

// Follow the results stream from `after` (read before pushing, so none is missed) until
// every id has its result, or the timeout passes.
async function waitResults(redis, ids, after, timeoutMs) {
  const wanted = new Set(ids);
  const found = [];
  const deadline = Date.now() + timeoutMs;
  let last = after;
  while (wanted.size > 0 && Date.now() < deadline) {
    const block = Math.max(1, Math.min(1000, deadline - Date.now()));
    const reply = await redis.xread('COUNT', 500, 'BLOCK', block, 'STREAMS', KEY('results'), last);
    for (const [, entries] of reply || []) {
      for (const [id, fields] of entries) {
        last = id;
        const result = JSON.parse(fields[fields.indexOf('result') + 1]);
        if (wanted.delete(result.job_id)) found.push(result);
      }
    }
  }
  return found;
}

async function main() {
  const Redis = require('ioredis');
  const redis = new Redis(process.env.REDIS_URL || 'redis://localhost:6379/0');
  try {
    const newest = await redis.xrevrange(KEY('results'), '+', '-', 'COUNT', 1);
    const after = newest.length ? newest[0][0] : '0';
    const jobs = exampleJobs();
    const sent = await push(redis, jobs);
    console.log(`pushed ${sent.pushed} jobs`);
    const next = plan(jobs, sent.duplicates);
    console.log(next.say);
    const results = await waitResults(redis, next.wait, after, 60000);
    for (const r of results) console.log(r.job_id, r.outcome, r.answer_status || '');
    if (results.length < next.wait.length) {
      console.log(`no result after 60 s for ${next.wait.length - results.length} jobs: is a worker running? (dispatcher status)`);
    }
  } finally {
    redis.disconnect();
  }
}

module.exports = { buildJob, exampleJobs, plan, push, waitResults };

if (require.main === module) {
  if (process.argv.includes('--print')) {
    for (const job of exampleJobs()) console.log(JSON.stringify(job));
  } else {
    main().catch((err) => { console.error(err); process.exit(1); });
  }
}
