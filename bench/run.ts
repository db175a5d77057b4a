/**
 * `npm run bench`: the plugin against the floor (a bare node:http long-poll server) and socket.io
 * (polling transport), each in its own server process, loaded from a separate load process on
 * 127.0.0.1. Prints a markdown report and writes bench/results/latest.{md,json}.
 *
 * Knobs (environment):
 *   BENCH_QUICK=1            small N and short runs (a smoke run in about a minute)
 *   BENCH_SERVERS=a,b        floor, socketio, plugin-memory, plugin-redis (default: all; Redis when reachable)
 *   BENCH_SCENARIOS=a,b      fanout, burst, idle, chat (default: all)
 *   BENCH_FANOUT_N=1000,5000 BENCH_FANOUT_MESSAGES=30,8 BENCH_FANOUT_RATE=2,1 (per N)
 *   BENCH_BURST_CLIENTS=1000 BENCH_BURST_RATES=20,100 BENCH_BURST_SECONDS=5,10 (seconds per rate)
 *   BENCH_IDLE_N=10000 BENCH_IDLE_N_SOCKETIO=2000
 *   BENCH_CHAT_ROOMS=50 BENCH_CHAT_MEMBERS=10 BENCH_CHAT_SENDERS=2 BENCH_CHAT_SECONDS=8
 *   BENCH_PROFILE=1          CPU-profile the measured window of the plugin and floor servers into
 *                            bench/results/profiles/ (figures of a profiled run are not comparable)
 *   REDIS_URL                Redis for the plugin-redis server (default redis://127.0.0.1:6379/0 when it answers)
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { Peer } from './ipc.js'
import type { LoadReport } from './load.js'
import type { BroadcastReport, HeapFigures, ServerKind, Usage } from './server-proc.js'
import { sleep, type LatencySummary } from './stats.js'

const env = process.env
const QUICK = env.BENCH_QUICK === '1'
const list = (v: string | undefined, fallback: string[]): string[] => v === undefined || v === '' ? fallback : v.split(',').map((s) => s.trim()).filter(Boolean)
const nums = (v: string | undefined, fallback: number[]): number[] => list(v, fallback.map(String)).map(Number)
const num = (v: string | undefined, fallback: number): number => v === undefined || v === '' ? fallback : Number(v)

const cfg = {
  quick: QUICK,
  fanoutN: nums(env.BENCH_FANOUT_N, QUICK ? [200, 500] : [1000, 5000]),
  /** Broadcasts and their rate, one per N (a single value applies to every N): enough deliveries for a steady CPU figure, slow enough that one fan-out ends before the next. */
  fanoutMessages: nums(env.BENCH_FANOUT_MESSAGES, QUICK ? [4] : [30, 8]),
  fanoutRate: nums(env.BENCH_FANOUT_RATE, QUICK ? [1] : [2, 1]),
  burstClients: num(env.BENCH_BURST_CLIENTS, QUICK ? 200 : 1000),
  burstRates: nums(env.BENCH_BURST_RATES, QUICK ? [100] : [20, 100]),
  /** Seconds of each burst run, one per rate (a single value applies to every rate). */
  burstSeconds: nums(env.BENCH_BURST_SECONDS, QUICK ? [3] : [5, 10]),
  idleN: num(env.BENCH_IDLE_N, QUICK ? 1000 : 10_000),
  // socket.io clients connect slowly (handshake, namespace connect, first poll): fewer of them.
  idleNSocketIo: num(env.BENCH_IDLE_N_SOCKETIO, QUICK ? 500 : 2000),
  chatRooms: num(env.BENCH_CHAT_ROOMS, QUICK ? 10 : 50),
  chatMembers: num(env.BENCH_CHAT_MEMBERS, 10),
  chatSenders: num(env.BENCH_CHAT_SENDERS, 2),
  chatSeconds: num(env.BENCH_CHAT_SECONDS, QUICK ? 3 : 8),
  pollTimeout: 25_000,
  profile: env.BENCH_PROFILE === '1'
}
const WARM_MESSAGES = 10 // broadcasts before the measured window of fan-out and burst
const WARM = 100 // sessions registered before the idle baseline, so that lazy setup is not counted per session
const RESULTS = join(__dirname, 'results')

/* Types of the report ----------------------------------------------------------------------------- */

interface DeliveryRow {
  scenario: 'fanout' | 'burst'
  server: ServerKind
  clients: number
  rate: number
  messages: number
  delivered: number
  expected: number
  duplicates: number
  missed: number
  latency: LatencySummary
  cpuMs: number
  cpuPer1k: number
  redisCpuPer1k: number | null
  peakRssMiB: number
  msgsPerResponse: number
  /** Server CPU per poll response (empty ones included), µs. */
  cpuPerResponseUs: number
  /** HTTP requests the server received per delivered message. */
  requestsPerDelivery: number
  /** CPU time over wall time of the measured window: the server process, and the load process (near 100 %: the load was the limit). */
  serverCpuPct: number
  loadCpuPct: number
  errors: Record<string, number>
  broadcastErrors: number
  broadcastLagMs: number
  timedOut: boolean
}

interface IdleRow {
  server: ServerKind
  sessions: number
  /** Heap (bytes) per registered session with no poll; null for socket.io (a client always polls). */
  perSession: number | null
  /** Heap (bytes) per held poll on top of its session; null for socket.io. */
  perHeldPoll: number | null
  /** Heap (bytes) per session with its poll held. */
  perClient: number
  held: number
  errors: Record<string, number>
  /** One broadcast to all of them: delivered / expected. */
  delivered: number
  expected: number
  peakRssMiB: number
  setupMs: number
}

interface ChatRow {
  server: ServerKind
  rooms: number
  members: number
  senders: number
  seconds: number
  sent: number
  sendsPerSec: number
  deliveriesPerSec: number
  delivered: number
  expected: number
  latency: LatencySummary
  send: LatencySummary
  cpuPer1k: number
  redisCpuPer1k: number | null
  peakRssMiB: number
  msgsPerResponse: number
  serverCpuPct: number
  loadCpuPct: number
  errors: Record<string, number>
}

interface Target { name: string, figure: string, limit: string, pass: boolean | null }

/* Helpers -------------------------------------------------------------------------------------------- */

let redisUrl: string | undefined
let redisInfo: Redis | undefined

async function findRedis (): Promise<string | undefined> {
  const url = env.REDIS_URL ?? 'redis://127.0.0.1:6379/0'
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await probe.ping()
    return url
  } catch {
    return undefined
  } finally {
    probe.disconnect()
  }
}

/** CPU seconds Redis has used (user + system), from INFO: to charge the Redis store its share. */
async function redisCpuMs (): Promise<number> {
  if (redisInfo === undefined) return 0
  const info = await redisInfo.info('cpu')
  const get = (k: string): number => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0)
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1000
}

function log (...args: unknown[]): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args)
}

interface Pair { srv: Peer, load: Peer, port: number, kind: ServerKind }

async function withServer<T> (kind: ServerKind, label: string, fn: (p: Pair) => Promise<T>): Promise<T> {
  const t0 = Date.now()
  const srv = new Peer('server-proc.ts', [kind], `server ${kind}`)
  const load = new Peer('load.ts', [], 'load')
  try {
    const { port } = await srv.call<{ port: number }>('start', { kind, pollTimeout: cfg.pollTimeout, redisUrl })
    log(`${label}: ${kind} on port ${port} (started in ${Date.now() - t0} ms)`)
    return await fn({ srv, load, port, kind })
  } finally {
    const t1 = Date.now()
    await load.stop()
    await srv.stop()
    log(`  stopped in ${Date.now() - t1} ms`)
  }
}

async function waitHeld (srv: Peer, n: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let held = 0
  while (Date.now() < deadline) {
    held = await srv.call<number>('held')
    if (held >= n) return held
    await sleep(100)
  }
  return held
}

const loadKind = (kind: ServerKind): 'lp' | 'socketio' => kind === 'socketio' ? 'socketio' : 'lp'

async function profileStart (p: Pair): Promise<void> {
  if (cfg.profile && p.kind !== 'socketio') await p.srv.call('profileStart')
}

async function profileStop (p: Pair, name: string): Promise<void> {
  if (cfg.profile && p.kind !== 'socketio') {
    const file = join(RESULTS, 'profiles', `${name}.cpuprofile`)
    await p.srv.call('profileStop', { file })
    log(`profile written: ${file}`)
  }
}

/* Scenarios ------------------------------------------------------------------------------------------ */

/** Fan-out and burst: `clients` held polls, `messages` broadcast by the server at `rate` per second. */
async function delivery (scenario: 'fanout' | 'burst', kind: ServerKind, clients: number, messages: number, rate: number): Promise<DeliveryRow> {
  return await withServer(kind, `${scenario} N=${clients} ${rate}/s`, async (p) => {
    const setup = await p.load.call<{ failures: number, ms: number }>('setup', {
      kind: loadKind(kind), port: p.port, rooms: Array.from({ length: clients }, () => []), concurrency: 100
    }, 180_000)
    await p.load.call('poll')
    const held = await waitHeld(p.srv, clients, 60_000)
    log(`  ${clients} clients set up in ${Math.round(setup.ms)} ms (${setup.failures} failed), ${held} polls held`)
    // Warm-up: the same path a few times before the measured window, so that it runs optimized.
    await p.load.call('reset')
    await p.srv.call('broadcast', { count: WARM_MESSAGES, rate: 10, first: 0 })
    await p.load.call('waitFor', { expected: clients * WARM_MESSAGES, timeoutMs: 30_000 }, 60_000)
    await waitHeld(p.srv, clients, 30_000)
    await sleep(300)
    const redis0 = await redisCpuMs()
    await p.load.call('reset')
    await p.srv.call('mark')
    await profileStart(p)
    const bc = await p.srv.call<BroadcastReport>('broadcast', { count: messages, rate, first: WARM_MESSAGES }, (messages / rate) * 1000 + 60_000)
    const rep = await p.load.call<LoadReport>('waitFor', { expected: clients * messages, timeoutMs: 60_000 }, 90_000)
    const usage = await p.srv.call<Usage>('usage')
    await profileStop(p, `${scenario}-${kind}-${clients}-${rate}`)
    const redisMs = kind === 'plugin-redis' ? (await redisCpuMs()) - redis0 : null
    const row: DeliveryRow = {
      scenario,
      server: kind,
      clients,
      rate,
      messages,
      delivered: rep.delivered,
      expected: rep.expected,
      duplicates: rep.duplicates,
      missed: rep.missed,
      latency: rep.latency,
      cpuMs: usage.cpuMs,
      cpuPer1k: rep.delivered > 0 ? usage.cpuMs / rep.delivered * 1000 : NaN,
      redisCpuPer1k: redisMs === null ? null : redisMs / Math.max(rep.delivered, 1) * 1000,
      peakRssMiB: usage.maxRssMiB,
      msgsPerResponse: rep.responsesWithMessages > 0 ? rep.messagesInThem / rep.responsesWithMessages : 0,
      cpuPerResponseUs: usage.cpuMs * 1000 / Math.max(rep.responsesWithMessages + rep.emptyResponses, 1),
      requestsPerDelivery: usage.requests / Math.max(rep.delivered, 1),
      serverCpuPct: usage.cpuMs / rep.wallMs * 100,
      loadCpuPct: rep.loadCpuMs / rep.wallMs * 100,
      errors: rep.errors,
      broadcastErrors: bc.errors,
      broadcastLagMs: bc.maxLagMs,
      timedOut: rep.timedOut
    }
    log(`  delivered ${row.delivered}/${row.expected}, p50 ${f(row.latency.p50Ms)} p99 ${f(row.latency.p99Ms)} max ${f(row.latency.maxMs)} ms, ` +
      `cpu ${f(row.cpuPer1k)} ms/1k, ${f(row.msgsPerResponse)} msg/resp, ${f(row.requestsPerDelivery, 3)} req/delivery, cpu% srv ${f(row.serverCpuPct, 0)} load ${f(row.loadCpuPct, 0)}, rss ${f(row.peakRssMiB)} MiB ${errText(row.errors)}`)
    return row
  })
}

/** Idle: heap per registered session and per held poll (after GC, over a warmed-up baseline), then one broadcast to all. */
async function idle (kind: ServerKind, n: number): Promise<IdleRow> {
  return await withServer(kind, `idle N=${n}`, async (p) => {
    const lk = loadKind(kind)
    // Warm-up: a few sessions with polls, so that lazily built code and caches are in the baseline.
    await p.load.call('setup', { kind: lk, port: p.port, rooms: Array.from({ length: WARM }, () => []), concurrency: 50 }, 60_000)
    await p.load.call('poll')
    await waitHeld(p.srv, WARM, 30_000)
    await p.load.call('closeIdle')
    const base = await p.srv.call<HeapFigures>('heap')
    const started = Date.now()
    const setup = await p.load.call<{ failures: number }>('setup', {
      kind: lk, port: p.port, rooms: Array.from({ length: n }, () => []), concurrency: 100
    }, 300_000)
    await p.load.call('closeIdle')
    let perSession: number | null = null
    let perHeldPoll: number | null = null
    let afterSessions: HeapFigures | null = null
    if (lk === 'lp') {
      afterSessions = await p.srv.call<HeapFigures>('heap')
      perSession = (afterSessions.heapUsed - base.heapUsed) / n
      await p.load.call('poll')
    }
    const held = await waitHeld(p.srv, n + WARM, 120_000)
    const setupMs = Date.now() - started
    await sleep(500)
    const afterPolls = await p.srv.call<HeapFigures>('heap')
    if (afterSessions !== null) perHeldPoll = (afterPolls.heapUsed - afterSessions.heapUsed) / n
    const perClient = (afterPolls.heapUsed - base.heapUsed) / n
    // Every one of the held polls gets one broadcast.
    await p.load.call('reset')
    await p.srv.call('broadcast', { count: 1, rate: 1 })
    const rep = await p.load.call<LoadReport>('waitFor', { expected: n + WARM, timeoutMs: 60_000 }, 90_000)
    const usage = await p.srv.call<Usage>('usage')
    const errors = { ...rep.errors }
    if (setup.failures > 0) errors['setup failed'] = setup.failures
    const row: IdleRow = {
      server: kind,
      sessions: n,
      perSession,
      perHeldPoll,
      perClient,
      held,
      errors,
      delivered: rep.delivered,
      expected: rep.expected,
      peakRssMiB: usage.maxRssMiB,
      setupMs
    }
    log(`  heap/session ${perSession === null ? 'n/a' : Math.round(perSession)} B, heap/held poll ${perHeldPoll === null ? 'n/a' : Math.round(perHeldPoll)} B, ` +
      `per client ${Math.round(perClient)} B; ${held} held, broadcast ${rep.delivered}/${rep.expected} ${errText(errors)}`)
    return row
  })
}

/** Chat: rooms of `members` sessions; `senders` per room post in a closed loop; everyone receives. */
async function chat (kind: ServerKind): Promise<ChatRow> {
  const { chatRooms: rooms, chatMembers: members, chatSenders: senders, chatSeconds: seconds } = cfg
  return await withServer(kind, `chat ${rooms}x${members}`, async (p) => {
    const roomsOf = Array.from({ length: rooms * members }, (_, i) => [`room-${Math.floor(i / members)}`])
    const senderIdx = roomsOf.map((_, i) => i).filter((i) => i % members < senders)
    await p.load.call('setup', { kind: loadKind(kind), port: p.port, rooms: roomsOf, concurrency: 100 }, 120_000)
    await p.load.call('poll')
    await waitHeld(p.srv, roomsOf.length, 60_000)
    await sleep(300)
    const redis0 = await redisCpuMs()
    await p.load.call('reset')
    await p.srv.call('mark')
    await profileStart(p)
    const res = await p.load.call<{ sent: number, expected: number, sendErrors: number, send: LatencySummary }>('chat', {
      senders: senderIdx, durationMs: seconds * 1000
    }, seconds * 1000 + 60_000)
    const rep = await p.load.call<LoadReport>('waitFor', { expected: res.expected, timeoutMs: 30_000 }, 60_000)
    const usage = await p.srv.call<Usage>('usage')
    await profileStop(p, `chat-${kind}`)
    const redisMs = kind === 'plugin-redis' ? (await redisCpuMs()) - redis0 : null
    const row: ChatRow = {
      server: kind,
      rooms,
      members,
      senders: senderIdx.length,
      seconds,
      sent: res.sent,
      sendsPerSec: res.sent / seconds,
      deliveriesPerSec: rep.delivered / Math.max(rep.spanMs / 1000, seconds),
      delivered: rep.delivered,
      expected: res.expected,
      latency: rep.latency,
      send: res.send,
      cpuPer1k: rep.delivered > 0 ? usage.cpuMs / rep.delivered * 1000 : NaN,
      redisCpuPer1k: redisMs === null ? null : redisMs / Math.max(rep.delivered, 1) * 1000,
      peakRssMiB: usage.maxRssMiB,
      msgsPerResponse: rep.responsesWithMessages > 0 ? rep.messagesInThem / rep.responsesWithMessages : 0,
      serverCpuPct: usage.cpuMs / rep.wallMs * 100,
      loadCpuPct: rep.loadCpuMs / rep.wallMs * 100,
      errors: rep.errors
    }
    log(`  ${f(row.sendsPerSec)} sends/s, ${f(row.deliveriesPerSec)} deliveries/s, delivered ${row.delivered}/${row.expected}, ` +
      `e2e p50 ${f(row.latency.p50Ms)} p99 ${f(row.latency.p99Ms)} ms, cpu ${f(row.cpuPer1k)} ms/1k, cpu% srv ${f(row.serverCpuPct, 0)} load ${f(row.loadCpuPct, 0)} ${errText(row.errors)}`)
    return row
  })
}

/* Report --------------------------------------------------------------------------------------------- */

function f (v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a'
  if (Math.abs(v) >= 100) return v.toFixed(0)
  return v.toFixed(digits)
}

function pct (a: number, b: number): string {
  if (b === 0) return 'n/a'
  const p = a / b * 100
  return `${p === 100 ? '100' : p.toFixed(2)} %`
}

function errText (e: Record<string, number>): string {
  const parts = Object.entries(e).map(([k, v]) => `${k}: ${v}`)
  return parts.length === 0 ? '' : `errors { ${parts.join(', ')} }`
}

function table (head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map((h, i) => i === 0 ? '---' : '---:').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`)
  ].join('\n')
}

function machine (): Record<string, string | number> {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`
  }
}

function targets (fan: DeliveryRow[], burst: DeliveryRow[], idleRows: IdleRow[]): Target[] {
  const out: Target[] = []
  const find = (rows: DeliveryRow[], server: ServerKind, n: number, rate?: number): DeliveryRow | undefined =>
    rows.find((r) => r.server === server && r.clients === n && (rate === undefined || r.rate === rate))
  for (const plugin of ['plugin-memory', 'plugin-redis'] as const) {
    const store = plugin === 'plugin-memory' ? 'memory store' : 'Redis store (node process only)'
    for (const n of cfg.fanoutN) {
      const pr = find(fan, plugin, n)
      const fl = find(fan, 'floor', n)
      if (pr === undefined || fl === undefined) continue
      const ratio = pr.cpuPer1k / fl.cpuPer1k
      out.push({ name: `fan-out N=${n}: server CPU per delivery vs floor, ${store}`, figure: `${f(ratio, 2)}× (${f(pr.cpuPer1k)} vs ${f(fl.cpuPer1k)} ms/1k)`, limit: '≤ 1.3×', pass: ratio <= 1.3 })
    }
    const top = Math.max(...cfg.burstRates)
    const pb = find(burst, plugin, cfg.burstClients, top)
    const fb = find(burst, 'floor', cfg.burstClients, top)
    if (pb !== undefined && fb !== undefined) {
      const ratio = pb.cpuPer1k / fb.cpuPer1k
      // A server that falls behind carries far more per response, which makes each delivery cheap: no comparison then.
      const batches = pb.msgsPerResponse / fb.msgsPerResponse
      const comparable = batches <= 2 && batches >= 0.5
      out.push({
        name: `burst ${top}/s: server CPU per delivery vs floor, ${store}`,
        figure: `${f(ratio, 2)}× (${f(pb.cpuPer1k)} vs ${f(fb.cpuPer1k)} ms/1k)` +
          (comparable ? '' : `; not comparable: ${f(pb.msgsPerResponse)} vs ${f(fb.msgsPerResponse)} msgs/response (p50 latency ${f(pb.latency.p50Ms)} vs ${f(fb.latency.p50Ms)} ms)`),
        limit: '≤ 1.2×',
        pass: comparable ? ratio <= 1.2 : null
      })
    }
    const n0 = cfg.fanoutN[0]
    const pl = find(fan, plugin, n0)
    const fl = find(fan, 'floor', n0)
    if (pl !== undefined && fl !== undefined) {
      out.push({ name: `fan-out N=${n0}: p99 latency vs floor, ${store}`, figure: `${f(pl.latency.p99Ms)} vs ${f(fl.latency.p99Ms)} ms (${f(pl.latency.p99Ms / fl.latency.p99Ms, 2)}×)`, limit: '≤ floor + 20 %', pass: pl.latency.p99Ms <= fl.latency.p99Ms * 1.2 })
    }
    const id = idleRows.find((r) => r.server === plugin)
    if (id !== undefined && id.perSession !== null) {
      out.push({ name: `heap per idle session, ${store}`, figure: `${Math.round(id.perSession)} B`, limit: '≤ 1024 B', pass: id.perSession <= 1024 })
    }
    if (id !== undefined) {
      const errs = Object.values(id.errors).reduce((a, b) => a + b, 0)
      out.push({
        name: `${id.sessions} concurrent held polls without an error, ${store}`,
        figure: `${id.held} held, ${errs} errors, broadcast ${id.delivered}/${id.expected}`,
        limit: `${id.sessions + WARM} held, 0 errors, all delivered`,
        pass: id.held >= id.sessions + WARM && errs === 0 && id.delivered === id.expected
      })
    }
  }
  for (const r of [...fan, ...burst]) {
    if (r.delivered !== r.expected || r.duplicates > 0) {
      out.push({ name: `${r.scenario} ${r.server} N=${r.clients} ${r.rate}/s: every message delivered once`, figure: `${r.delivered}/${r.expected}, ${r.duplicates} duplicates`, limit: '100 %', pass: false })
    }
  }
  const all = [...fan, ...burst]
  if (all.length > 0 && all.every((r) => r.delivered === r.expected && r.duplicates === 0)) {
    out.push({ name: 'fan-out and burst: delivered / expected, every server and run', figure: '100 %', limit: '100 %', pass: true })
  }
  return out
}

function render (meta: Record<string, unknown>, fan: DeliveryRow[], burst: DeliveryRow[], idleRows: IdleRow[], chatRows: ChatRow[], tg: Target[]): string {
  const m = meta.machine as Record<string, string | number>
  const lines: string[] = []
  lines.push(`# Benchmark results (${String(meta.date)})`, '')
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}${cfg.quick ? ' — QUICK run (small N)' : ''}${cfg.profile ? ' — PROFILED run (CPU figures inflated)' : ''}.`)
  const la = meta.loadAverage as { atStart: number[], atEnd: number[] }
  lines.push('Server and load generator are separate processes on 127.0.0.1 sharing the machine; CPU, RSS and heap are read by each server process about itself. ' +
    `Load average (1/5/15 min) at start ${la.atStart.join(' / ')}, at end ${la.atEnd.join(' / ')} (other work on the machine shows here; latency suffers from it most).`, '')
  const delivHead = ['server', 'N', 'rate/s', 'delivered', 'p50 ms', 'p99 ms', 'max ms', 'CPU ms / 1k deliveries', 'msgs / response', 'CPU µs / response', 'CPU % server / load', 'peak RSS MiB', 'errors']
  const delivRow = (r: DeliveryRow): string[] => [
    r.server, String(r.clients), String(r.rate), pct(r.delivered, r.expected),
    f(r.latency.p50Ms), f(r.latency.p99Ms), f(r.latency.maxMs),
    f(r.cpuPer1k, 2) + (r.redisCpuPer1k === null ? '' : ` (+${f(r.redisCpuPer1k, 2)} Redis)`),
    f(r.msgsPerResponse, 2), f(r.cpuPerResponseUs), `${f(r.serverCpuPct, 0)} / ${f(r.loadCpuPct, 0)}`, f(r.peakRssMiB), String(Object.values(r.errors).reduce((a, b) => a + b, 0) + r.broadcastErrors)
  ]
  if (fan.length > 0) {
    lines.push(`## Fan-out: N held polls, server broadcasts at a steady rate (${cfg.fanoutN.map((n, i) => `N = ${n}: ${cfg.fanoutMessages[Math.min(i, cfg.fanoutMessages.length - 1)]} at ${cfg.fanoutRate[Math.min(i, cfg.fanoutRate.length - 1)]}/s`).join('; ')})`, '')
    lines.push(table(delivHead, fan.map(delivRow)), '')
  }
  if (burst.length > 0) {
    lines.push(`## Burst: ${cfg.burstClients} clients, broadcasts at the given rate (${cfg.burstRates.map((r, i) => `${r}/s for ${cfg.burstSeconds[Math.min(i, cfg.burstSeconds.length - 1)]} s`).join(', ')})`, '')
    lines.push(table(delivHead, burst.map(delivRow)), '')
  }
  if (idleRows.length > 0) {
    lines.push('## Idle: heap after GC, delta over a warmed-up baseline', '')
    lines.push(table(['server', 'sessions', 'heap / idle session', 'heap / held poll', 'heap / session + held poll', 'held polls', 'one broadcast delivered', 'peak RSS MiB', 'errors'],
      idleRows.map((r) => [
        r.server, String(r.sessions), r.perSession === null ? 'n/a' : `${Math.round(r.perSession)} B`, r.perHeldPoll === null ? 'n/a' : `${Math.round(r.perHeldPoll)} B`,
        `${Math.round(r.perClient)} B`, String(r.held), `${r.delivered}/${r.expected}`, f(r.peakRssMiB), String(Object.values(r.errors).reduce((a, b) => a + b, 0))
      ])), '')
  }
  if (chatRows.length > 0) {
    const c = chatRows[0]
    lines.push(`## Chat: ${c.rooms} rooms × ${c.members} members, ${c.senders} senders in a closed loop for ${c.seconds} s, rate limit off`, '')
    lines.push(table(['server', 'sends/s', 'deliveries/s', 'delivered', 'send p50 ms', 'send p99 ms', 'e2e p50 ms', 'e2e p99 ms', 'CPU ms / 1k deliveries', 'msgs / response', 'CPU % server / load', 'peak RSS MiB', 'errors'],
      chatRows.map((r) => [
        r.server, f(r.sendsPerSec), f(r.deliveriesPerSec), pct(r.delivered, r.expected), f(r.send.p50Ms), f(r.send.p99Ms), f(r.latency.p50Ms), f(r.latency.p99Ms),
        f(r.cpuPer1k, 2) + (r.redisCpuPer1k === null ? '' : ` (+${f(r.redisCpuPer1k, 2)} Redis)`), f(r.msgsPerResponse, 2), `${f(r.serverCpuPct, 0)} / ${f(r.loadCpuPct, 0)}`, f(r.peakRssMiB),
        String(Object.values(r.errors).reduce((a, b) => a + b, 0))
      ])), '')
  }
  if (tg.length > 0) {
    lines.push('## Targets', '')
    lines.push(table(['target', 'figure', 'limit', 'result'], tg.map((t) => [t.name, t.figure, t.limit, t.pass === null ? 'n/a' : t.pass ? 'pass' : '**miss**'])), '')
  }
  const errs = [...fan, ...burst].filter((r) => Object.keys(r.errors).length > 0)
  if (errs.length > 0) {
    lines.push('Errors seen by the load generator:', '')
    for (const r of errs) lines.push(`- ${r.scenario} ${r.server} N=${r.clients} ${r.rate}/s: ${errText(r.errors)}`)
    lines.push('')
  }
  return lines.join('\n')
}

/* Main ----------------------------------------------------------------------------------------------- */

async function main (): Promise<void> {
  const started = Date.now()
  const loadAtStart = os.loadavg().map((v) => Number(v.toFixed(2)))
  redisUrl = await findRedis()
  const allServers: ServerKind[] = ['floor', 'socketio', 'plugin-memory', 'plugin-redis']
  let servers = list(env.BENCH_SERVERS, allServers) as ServerKind[]
  for (const s of servers) if (!allServers.includes(s)) throw new Error(`unknown server ${s}`)
  if (redisUrl === undefined) {
    if (servers.includes('plugin-redis')) log('Redis is not reachable: plugin-redis is skipped (set REDIS_URL)')
    servers = servers.filter((s) => s !== 'plugin-redis')
  } else if (servers.includes('plugin-redis')) {
    redisInfo = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  }
  const scenarios = list(env.BENCH_SCENARIOS, ['fanout', 'burst', 'idle', 'chat'])
  mkdirSync(join(RESULTS, 'profiles'), { recursive: true })
  log(`servers: ${servers.join(', ')}; scenarios: ${scenarios.join(', ')}${QUICK ? ' (quick)' : ''}`)

  const fan: DeliveryRow[] = []
  const burst: DeliveryRow[] = []
  const idleRows: IdleRow[] = []
  const chatRows: ChatRow[] = []
  const failures: string[] = []
  const attempt = async (what: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn()
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message.split('\n')[0]}`)
      log(`FAILED ${what}:`, err)
    }
  }

  if (scenarios.includes('fanout')) {
    for (const [i, n] of cfg.fanoutN.entries()) {
      const messages = cfg.fanoutMessages[Math.min(i, cfg.fanoutMessages.length - 1)]
      const rate = cfg.fanoutRate[Math.min(i, cfg.fanoutRate.length - 1)]
      for (const s of servers) await attempt(`fanout ${s} N=${n}`, async () => { fan.push(await delivery('fanout', s, n, messages, rate)) })
    }
  }
  if (scenarios.includes('burst')) {
    for (const [i, rate] of cfg.burstRates.entries()) {
      const seconds = cfg.burstSeconds[Math.min(i, cfg.burstSeconds.length - 1)]
      for (const s of servers) await attempt(`burst ${s} ${rate}/s`, async () => { burst.push(await delivery('burst', s, cfg.burstClients, rate * seconds, rate)) })
    }
  }
  if (scenarios.includes('idle')) {
    for (const s of servers) await attempt(`idle ${s}`, async () => { idleRows.push(await idle(s, s === 'socketio' ? cfg.idleNSocketIo : cfg.idleN)) })
  }
  if (scenarios.includes('chat')) {
    for (const s of servers) await attempt(`chat ${s}`, async () => { chatRows.push(await chat(s)) })
  }
  redisInfo?.disconnect()

  const tg = targets(fan, burst, idleRows)
  const meta = {
    date: new Date().toISOString(),
    machine: machine(),
    loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map((v) => Number(v.toFixed(2))) },
    config: cfg,
    servers,
    durationS: Math.round((Date.now() - started) / 1000)
  }
  let md = render(meta, fan, burst, idleRows, chatRows, tg)
  md += `\nWhole run: ${meta.durationS} s.${failures.length > 0 ? ` Failed runs: ${failures.join('; ')}.` : ''}\n`
  writeFileSync(join(RESULTS, 'latest.md'), md)
  writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify({ ...meta, fanout: fan, burst, idle: idleRows, chat: chatRows, targets: tg, failures }, null, 2) + '\n')
  console.log(md)
  log(`written: ${join(RESULTS, 'latest.md')}, latest.json`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
