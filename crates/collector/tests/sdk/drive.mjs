#!/usr/bin/env node
// Drives a real Node tracking SDK against the collector and prints what happened.
//
//     node drive.mjs <segment|customerio> <calls|mixed|wrong_key|bearer>
//
// Environment:
//     CDP_COLLECTOR_URL  base URL of the collector, e.g. http://127.0.0.1:8080 (required)
//     CDP_WRITE_KEY      a write key the collector accepts (required except for wrong_key)
//     CDP_RUN_ID         prefix that makes every messageId unique across runs
//                        (a random one is made, and printed, when absent)
//     CDP_STRICT_MODE=1  send `X-Strict-Mode: 1` on every request (added by the
//                        pass-through fetch wrapper: neither SDK takes custom headers)
//
// The last line of stdout is one JSON object (see README.md). Everything else goes to
// stderr. Exit status 0 unless this script itself broke: an SDK that reports an
// error is a result.

import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'

// SDK and library logging must not reach stdout: the last stdout line is the result.
console.log = console.error
console.info = console.error
console.debug = console.error

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

const SDKS = {
  segment: { package: '@segment/analytics-node' },
  customerio: { package: '@customerio/cdp-analytics-node' },
}
const SCENARIOS = ['calls', 'mixed', 'wrong_key', 'bearer']
const LANG = 'node'
const MAX_CALL_BYTES = 32 * 1024
const RECEIVED_AT_BYTES = ',"receivedAt":"2026-01-01T00:00:00.000Z"'.length
const FLUSH_DEADLINE_MS = 20000

function fail(message) {
  process.stderr.write(`drive.mjs: ${message}\n`)
  process.exit(2)
}

const [sdk, scenario] = process.argv.slice(2)
if (process.argv.length !== 4 || !SDKS[sdk] || !SCENARIOS.includes(scenario)) {
  fail(`usage: drive.mjs <${Object.keys(SDKS).join('|')}> <${SCENARIOS.join('|')}>`)
}
const info = SDKS[sdk]
const url = process.env.CDP_COLLECTOR_URL
if (!url) fail('CDP_COLLECTOR_URL is not set')
let key = process.env.CDP_WRITE_KEY
if (scenario === 'wrong_key') key = 'wrong-key'
else if (!key) fail('CDP_WRITE_KEY is not set')
const run = process.env.CDP_RUN_ID || `run${Date.now()}${randomUUID().slice(0, 8)}`
const strict = process.env.CDP_STRICT_MODE === '1'

let Analytics, version
try {
  Analytics = require(info.package).Analytics
  version = JSON.parse(readFileSync(join(here, 'node_modules', info.package, 'package.json'), 'utf8')).version
} catch (e) {
  fail(`cannot load ${info.package}: ${e}; run install.sh`)
}

// ---- observe the HTTP requests the SDK makes (pass-through) ----------------------
// Both SDKs call globalThis.fetch at request time. In probe mode nothing leaves the
// process: the wrapper answers 200 itself (used only to measure the SDK's own calls).
const realFetch = globalThis.fetch
const http = []
const probeBodies = []
let probeMode = false

function authOf(header) {
  if (!header) return [null, null]
  const i = header.indexOf(' ')
  const scheme = i < 0 ? header : header.slice(0, i)
  const rest = i < 0 ? '' : header.slice(i + 1)
  if (scheme.toLowerCase() === 'basic') {
    try {
      return ['Basic', Buffer.from(rest, 'base64').toString('utf8').split(':')[0]]
    } catch {
      return ['Basic', null]
    }
  }
  return [scheme, rest]
}

globalThis.fetch = async (target, init = {}) => {
  const body = typeof init.body === 'string' ? init.body : String(init.body ?? '')
  if (probeMode) {
    probeBodies.push(body)
    return new Response('{"success":true}', { status: 200, headers: { 'content-type': 'application/json' } })
  }
  const headers = { ...(init.headers || {}) }
  if (strict) headers['X-Strict-Mode'] = '1'
  const entry = {
    url: String(target),
    gzip: false,
    body_bytes: Buffer.byteLength(body),
    retry_count_header: headers['X-Retry-Count'] ?? null,
  }
  ;[entry.auth_scheme, entry.auth_key] = authOf(headers.Authorization)
  entry.strict_header = headers['X-Strict-Mode'] ?? null
  try {
    const parsed = JSON.parse(body)
    entry.top_level_keys = Object.keys(parsed).sort()
    entry.messageIds = (parsed.batch || []).map((m) => m.messageId)
    entry._elements = parsed.batch || []
  } catch (e) {
    entry.body_error = String(e)
  }
  http.push(entry)
  let res
  try {
    res = await realFetch(target, { ...init, headers })
  } catch (e) {
    entry.error = `${e?.name}: ${e?.message}${e?.cause ? ` (${e.cause.code || e.cause.message})` : ''}`
    throw e
  }
  entry.status = res.status
  entry.status_text = res.statusText
  try {
    entry.response = (await res.clone().text()).slice(0, 500)
  } catch (e) {
    entry.response = `<unreadable: ${e}>`
  }
  return res
}

// ---- the calls of the scenario -----------------------------------------------------
const prefix = `${run}-${sdk}-${LANG}`
const user = `${prefix}-user`
const ctx = { ip: '203.0.113.7', locale: 'en-US', userAgent: 'cdp-sdk-test/1.0', campaign: { name: 'sdk-test', source: 'drive' } }
const mid = (label) => (scenario === 'calls' ? `${prefix}-${label}` : `${prefix}-${scenario}-${label}`)
const fresh = (v) => JSON.parse(JSON.stringify(v)) // the SDKs write context.library into the object given

const plan = []
function add(method, label, expect, reason, params, padTarget = null) {
  plan.push({ method, label, expect, reason, params: { messageId: mid(label), ...params }, padTarget })
}

if (scenario === 'calls') {
  add('identify', 'identify', 'kept', 'valid', { userId: user, context: fresh(ctx),
    traits: { email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro', logins: 3 } })
  add('track', 'track', 'kept', 'valid', { userId: user, context: fresh(ctx), event: 'Order Completed',
    properties: { orderId: 'o-1', revenue: 42.5, currency: 'EUR', items: [{ sku: 's-1', qty: 2 }] } })
  add('page', 'page', 'kept', 'valid', { userId: user, context: fresh(ctx), name: 'Pricing',
    properties: { path: '/pricing', url: 'https://example.com/pricing', title: 'Pricing' } })
  add('screen', 'screen', 'kept', 'valid', { userId: user, context: fresh(ctx), name: 'Home',
    properties: { variant: 'b', loadMs: 120 } })
  add('group', 'group', 'kept', 'valid', { userId: user, context: fresh(ctx), groupId: `${prefix}-acme`,
    traits: { name: 'Acme Inc', industry: 'Manufacturing', employees: 120 } })
  add('alias', 'alias', 'kept', 'valid', { userId: user, context: fresh(ctx), previousId: `${prefix}-anon` })
} else if (scenario === 'mixed') {
  add('track', 'valid1', 'kept', 'valid', { userId: user, context: fresh(ctx), event: 'Signed Up', properties: { plan: 'free' } })
  add('identify', 'valid2', 'kept', 'valid', { userId: user, context: fresh(ctx), traits: { email: 'grace@example.com' } })
  add('track', 'noevent', 'rejected', 'missing event', { userId: user, properties: { why: 'no event' } })
  add('track', 'emptyevent', 'rejected', 'empty event', { userId: user, event: '', properties: { why: 'empty event' } })
  let longId = mid('longid-')
  longId += 'L'.repeat(Math.max(150 - longId.length, 10))
  add('track', 'longid', 'rejected', 'messageId over 100 characters', { userId: user, event: 'Long Id',
    properties: { length: longId.length }, messageId: longId })
  // Compact JSON as the SDK sends it (JSON.stringify): 8 bytes under 32 KiB, and over
  // it once receivedAt is added; then exactly 32 KiB; then one byte over. The SDKs'
  // own 32 KB check counts only %-escapes and the letter "i" (see README), so the
  // padding of "x" lets the oversized call through to the collector.
  add('track', 'near32k', 'kept', 'just under 32 KiB', { userId: user, event: 'Big But Fine', properties: { kind: 'near' } }, MAX_CALL_BYTES - 8)
  add('track', 'at32k', 'kept', 'exactly 32 KiB', { userId: user, event: 'Exactly At Limit', properties: { kind: 'at' } }, MAX_CALL_BYTES)
  add('track', 'over32k', 'rejected', 'over 32 KiB', { userId: user, event: 'Too Big', properties: { kind: 'over' } }, MAX_CALL_BYTES + 1)
  add('page', 'valid3', 'kept', 'valid', { userId: user, name: 'Docs', properties: { path: '/docs' } })
} else {
  add('track', 'track', scenario === 'wrong_key' ? 'rejected' : 'kept', scenario === 'wrong_key' ? 'wrong write key (401)' : 'valid',
    { userId: user, context: fresh(ctx), event: 'Key Checked', properties: { scenario } })
}

function settings(extra) {
  const s = { writeKey: key, host: url, maxRetries: 2, httpRequestTimeout: 5000, ...extra }
  if (sdk === 'segment') {
    // Counted retries: 2 (backoff 1-2 s, then 2-4 s). Also bound the Retry-After path.
    s.maxTotalBackoffDuration = 10
    s.maxRateLimitDuration = 5
  }
  return s
}
const batchSetting = (n) => (sdk === 'segment' ? { flushAt: n } : { maxEventsInBatch: n })

function sdkMeasured(el) {
  // The SDKs' own size estimate (ContextBatch.calculateSize), compared with 32 * 1024.
  return encodeURI(JSON.stringify(el)).split(/%..|i/).length
}

function withDeadline(promise, ms) {
  let timer
  return Promise.race([
    promise.then(() => 'ok', (e) => `rejected: ${e}`),
    new Promise((resolve) => { timer = setTimeout(() => resolve(`timeout after ${ms / 1000}s`), ms) }),
  ]).finally(() => clearTimeout(timer))
}

async function main() {
  // ---- size the padded calls on a probe client that sends nothing ---------------------
  const padded = plan.filter((p) => p.padTarget)
  if (padded.length) {
    probeMode = true
    const probe = new Analytics(settings({ ...batchSetting(100), flushInterval: 10000 }))
    for (const p of padded) {
      probe[p.method](fresh({ ...p.params, properties: { ...p.params.properties, blob: '' } }))
    }
    await withDeadline(probe.closeAndFlush({ timeout: 5000 }), 6000)
    probeMode = false
    const sizes = {}
    for (const body of probeBodies) {
      for (const el of JSON.parse(body).batch) sizes[el.messageId] = Buffer.byteLength(JSON.stringify(el))
    }
    for (const p of padded) {
      if (sizes[p.params.messageId] === undefined) throw new Error(`probe did not see ${p.params.messageId}`)
      p.padLength = p.padTarget - sizes[p.params.messageId]
      p.params.properties = { ...p.params.properties, blob: 'x'.repeat(p.padLength) }
    }
  }

  if (strict && scenario === 'mixed') {
    for (const p of plan) {
      if (p.expect === 'kept') [p.expect, p.reason] = ['rejected', 'strict mode: the whole request is rejected (400)']
      else p.reason += '; strict mode: the whole request is rejected (400)'
    }
  }

  // ---- the real client -------------------------------------------------------------------
  // All calls are made synchronously, then closeAndFlush(): the publisher sends the
  // batch as soon as it holds every pending call, so a scenario's calls leave in one
  // request (the flush interval is only a fallback).
  const client = new Analytics(settings({ ...batchSetting(100), flushInterval: scenario === 'mixed' ? 3000 : 500 }))
  const emitted = []
  client.on('error', (err) => {
    emitted.push({ code: err?.code ?? null, reason: String(err?.reason ?? err), messageId: err?.ctx?.event?.messageId ?? null })
  })
  const callbacks = {}
  const thrown = {}
  for (const p of plan) {
    const id = p.params.messageId
    try {
      client[p.method](fresh(p.params), (err, ctx) => {
        callbacks[id] = err ? `error: ${err?.message ?? err}` : 'ok'
      })
    } catch (e) {
      thrown[id] = `${e?.name ?? 'Error'}: ${e?.message ?? e}`
    }
  }
  const started = Date.now()
  const flush = await withDeadline(client.closeAndFlush({ timeout: 15000 }), FLUSH_DEADLINE_MS)
  const flushSeconds = (Date.now() - started) / 1000

  // ---- output -------------------------------------------------------------------------------
  const wire = {}
  http.forEach((entry, i) => {
    for (const el of entry._elements || []) if (!(el.messageId in wire)) wire[el.messageId] = [i, el]
    delete entry._elements
  })
  const attempts = {}
  for (const entry of http) for (const m of entry.messageIds || []) attempts[m] = (attempts[m] || 0) + 1

  const calls = plan.map((p) => {
    const id = p.params.messageId
    const rec = { messageId: id, type: p.method }
    if (thrown[id]) Object.assign(rec, { expect: 'dropped_by_sdk', reason: p.reason, sdk_error: thrown[id] })
    else if (!wire[id]) Object.assign(rec, { expect: 'dropped_by_sdk', reason: p.reason, sdk_error: callbacks[id] ?? 'never sent' })
    else Object.assign(rec, { expect: p.expect, reason: p.reason })
    for (const f of ['userId', 'anonymousId', 'event', 'name', 'category', 'groupId', 'previousId', 'traits', 'context']) {
      if (f in p.params) rec[f] = p.params[f]
    }
    if (p.method === 'track' && !('event' in p.params)) rec.event = null
    if (p.params.properties) {
      const props = { ...p.params.properties }
      if (p.padLength !== undefined) {
        delete props.blob
        rec.pad = { field: 'properties.blob', char: 'x', length: p.padLength }
      }
      rec.properties = props
    }
    if (wire[id]) {
      const [i, el] = wire[id]
      const size = Buffer.byteLength(JSON.stringify(el))
      rec.sdk_measured_bytes = sdkMeasured(el)
      rec.wire = {
        request: i,
        timestamp: el.timestamp ?? null,
        library: el.context?.library ?? null,
        bytes_as_sent: size,
        compact_bytes: size,
        compact_bytes_plus_receivedAt: size + RECEIVED_AT_BYTES,
      }
      if (p.padLength === undefined) rec.wire.element = el // the call exactly as it went out (parsed back)
    } else {
      rec.wire = null
    }
    return rec
  })

  const perCall = {}
  for (const p of plan) {
    const id = p.params.messageId
    perCall[id] = thrown[id] ? `dropped: ${thrown[id]}` : callbacks[id] ?? 'no callback'
  }
  const out = {
    sdk,
    package: info.package,
    version,
    lang: LANG,
    scenario,
    run,
    strict_mode: strict,
    gzip: false,
    auth_scheme_expected: 'Basic',
    calls,
    reported: {
      per_call: perCall,
      callback_errors: Object.values(callbacks).filter((v) => v !== 'ok').length,
      callback_ok: Object.values(callbacks).filter((v) => v === 'ok').length,
      emitted_errors: emitted,
      error_count: emitted.length,
      client_side_exceptions: thrown,
      flush,
      flush_seconds: flushSeconds,
    },
    http,
    http_requests: http.length,
    http_attempts_per_call: attempts,
  }
  if (scenario === 'bearer') out.note = 'this SDK never sends Bearer (always HTTP Basic with the key as user); the call went with HTTP Basic'
  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0))
}

main().catch((e) => {
  process.stderr.write(`drive.mjs: ${e?.stack ?? e}\n`)
  process.exit(2)
})
