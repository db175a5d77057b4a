/**
 * The scenarios of `npm run bench`: fan-out and burst (held polls, server-side broadcasts at a
 * steady rate), idle (heap per session and per held poll) and chat (rooms, senders in a closed
 * loop). Each runs against a fresh server process and a fresh load process (bench/ipc.ts) and
 * returns one row of the report.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { cfg, RESULTS, WARM, WARM_MESSAGES } from './config.js'
import { Peer } from './ipc.js'
import type { LoadReport } from './load.js'
import { errText, f, log } from './report.js'
import type { BroadcastReport, HeapFigures, ServerKind, Usage } from './server-proc.js'
import { sleep, type LatencySummary } from './stats.js'

/* Rows of the report --------------------------------------------------------------------------------- */

export interface DeliveryRow {
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

export interface IdleRow {
  server: ServerKind
  sessions: number
  /** Heap (bytes) per registered session with no poll; null for socket.io (a client always polls). */
  perSession: number | null
  /** Heap (bytes) per held poll on top of its session; null for socket.io. */
  perHeldPoll: number | null
  /** Heap (bytes) per session with its poll held. */
  perClient: number
  /** Resident set size (bytes, after GC) per session with its poll held. */
  rssPerClient: number
  held: number
  errors: Record<string, number>
  /** One broadcast to all of them: delivered / expected. */
  delivered: number
  expected: number
  peakRssMiB: number
  setupMs: number
}

export interface ChatRow {
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

/* Helpers -------------------------------------------------------------------------------------------- */

let redisUrl: string | undefined
let redisInfo: Redis | undefined

/** The Redis the plugin-redis server uses, and a client to read its CPU time from (when plugin-redis runs). */
export function useRedis (url: string | undefined, info: Redis | undefined): void {
  redisUrl = url
  redisInfo = info
}

/** CPU seconds Redis has used (user + system), from INFO: to charge the Redis store its share. */
async function redisCpuMs (): Promise<number> {
  if (redisInfo === undefined) return 0
  const info = await redisInfo.info('cpu')
  const get = (k: string): number => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0)
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1000
}

interface Pair { srv: Peer, load: Peer, port: number, kind: ServerKind }

/** The CPUs a process may run on, as the kernel has it (to show that pinning took). */
function affinity (pid: number | undefined): string {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?'
  } catch {
    return '?'
  }
}

async function withServer<T> (kind: ServerKind, label: string, fn: (p: Pair) => Promise<T>): Promise<T> {
  const t0 = Date.now()
  const srv = new Peer('server-proc.ts', [kind], `server ${kind}`, { cpu: cfg.pin.server ?? undefined })
  const load = new Peer('load.ts', [], 'load', { cpu: cfg.pin.load ?? undefined })
  try {
    const { port } = await srv.call<{ port: number }>('start', { kind, pollTimeout: cfg.pollTimeout, redisUrl })
    const pinned = cfg.pin.server === null ? '' : `, CPUs: server ${affinity(srv.child.pid)}, load ${affinity(load.child.pid)}`
    log(`${label}: ${kind} on port ${port} (started in ${Date.now() - t0} ms${pinned})`)
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
export async function delivery (scenario: 'fanout' | 'burst', kind: ServerKind, clients: number, messages: number, rate: number): Promise<DeliveryRow> {
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
export async function idle (kind: ServerKind, n: number): Promise<IdleRow> {
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
    const rssPerClient = (afterPolls.rss - base.rss) / n
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
      rssPerClient,
      held,
      errors,
      delivered: rep.delivered,
      expected: rep.expected,
      peakRssMiB: usage.maxRssMiB,
      setupMs
    }
    log(`  heap/session ${perSession === null ? 'n/a' : Math.round(perSession)} B, heap/held poll ${perHeldPoll === null ? 'n/a' : Math.round(perHeldPoll)} B, ` +
      `per client ${Math.round(perClient)} B heap, ${f(rssPerClient / 1024)} KiB RSS; ${held} held, broadcast ${rep.delivered}/${rep.expected} ${errText(errors)}`)
    return row
  })
}

/** Chat: rooms of `members` sessions; `senders` per room post in a closed loop; everyone receives. */
export async function chat (kind: ServerKind): Promise<ChatRow> {
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
