/**
 * The scenarios of the server at its limits (docs/performance.md, "Scenarios"), against the
 * plugin's public surface only (HTTP routes, `app.longPoll`, options), so that they measure the
 * current code and whatever replaces it:
 *
 * - expiry storm: many sessions of one room expire together while members of it stay: the longest
 *   event-loop block, heap, how soon they are gone, and whether the members that stay lose a message;
 * - slow readers: polls answered with big responses that the client never reads: server memory
 *   over time and connections still open;
 * - Redis broadcast cost: Redis CPU per broadcast with few and with many idle sessions.
 */
import { spawnSync } from 'node:child_process'
import { cfg } from './config.js'
import type { LoadReport } from './load.js'
import { redisDelta, redisLatencyReset, redisLongestMs, redisSnapshot } from './redis.js'
import { errText, f, log } from './report.js'
import { benchRedis, redisNow, waitHeld, withServer } from './scenarios.js'
import type { LoopFigures, MemoryFigures, ServerKind, Usage, WatchFigures } from './server-proc.js'
import { nowUs, sleep, type LatencySummary } from './stats.js'

const MiB = 1048576

/* Expiry storm --------------------------------------------------------------------------------------- */

export interface StormRow {
  server: ServerKind
  /** Sessions that expire together, members of the room that stay, `sessionTtl`, real messages posted during the storm. */
  sessions: number
  stayers: number
  ttlMs: number
  messages: number
  /** Registration of both groups and the stayers' first polls, s; sessions registered; whether the budget ran out first (no storm then). */
  setupS: number
  registered: number
  overBudget: boolean
  /** Live sessions just before the clock ran again (sessions + stayers when none was lost during the setup). */
  sessionsBefore: number
  heapBeforeMiB: number
  heapAfterMiB: number
  rssBeforeMiB: number
  rssAfterMiB: number
  peakRssMiB: number
  /** The server's event loop over the storm window. */
  loop: LoopFigures | null
  /** From the moment the sessions were due to expire (`sessionTtl` after the clock ran again) to the first removed, and to the last, s. */
  firstGoneS: number | null
  allGoneS: number | null
  remaining: number
  /** Real room messages: deliveries received / expected (stayers × messages), stayers that got every one, the fewest one got. */
  realDelivered: number
  realExpected: number
  stayersComplete: number
  fewest: number
  /** `missed` summed over every poll response the stayers got in the window; leave notices they received. */
  missed: number
  leaves: number
  /** From the moment the sessions were due to the last leave notice a stayer received, s (null: none). */
  leavesDoneS: number | null
  /** p99 of the real messages' POST /messages round trips, ms. */
  postP99Ms: number | null
  redisCpuMs: number | null
  redisLongestMs: number | null
  errors: Record<string, number>
}

/**
 * Expiry storm. The server's clock stands still while `stormSessions` sessions register in room
 * `storm` (HTTP from the load process, 50 at a time, then forgotten: they never make another
 * request), and then `stormStayers` more (the load process's clients); the stayers poll, read
 * their join notices and hold. Then the clock runs again: `sessionTtl` later every session of the
 * first group expires at once, as when a big room's clients all go away together. The stayers
 * keep polling through the storm; one of them posts `stormMessages` real messages to the room, one
 * every 500 ms from 500 ms before the expiry. The registration gives up (no storm) when it cannot
 * be done within `stormSetupS`.
 */
export async function storm (kind: ServerKind): Promise<StormRow> {
  const { stormSessions: D, stormStayers: S, stormTtl: ttl, stormMessages: K, stormSetupS } = cfg
  const room = 'storm'
  // The Redis store's key TTLs are backstops in Redis's own (real) time: longer than any setup here.
  const start = { options: { sessionTtl: ttl }, storeOptions: { gcMargin: 3_600_000 } }
  return await withServer(kind, `storm ${D}+${S} ttl ${ttl} ms`, async (p) => {
    const t0 = performance.now()
    await p.srv.call('clock', { freeze: true })
    const reg = await p.load.call<{ registered: number, failures: number, ms: number, overBudget: boolean }>('register', {
      port: p.port, count: D, rooms: [room], concurrency: 50, budgetMs: stormSetupS * 1000
    }, stormSetupS * 1000 + 120_000)
    log(`  ${reg.registered} storm sessions registered in ${f(reg.ms / 1000)} s${reg.failures > 0 ? ` (${reg.failures} failed)` : ''}${reg.overBudget ? ` (given up: the rest would not fit in the budget of ${stormSetupS} s; no storm)` : ''}`)
    const row: StormRow = {
      server: kind,
      sessions: D,
      stayers: S,
      ttlMs: ttl,
      messages: K,
      setupS: 0,
      registered: reg.registered,
      overBudget: reg.overBudget,
      sessionsBefore: 0,
      heapBeforeMiB: NaN,
      heapAfterMiB: NaN,
      rssBeforeMiB: NaN,
      rssAfterMiB: NaN,
      peakRssMiB: NaN,
      loop: null,
      firstGoneS: null,
      allGoneS: null,
      remaining: NaN,
      realDelivered: 0,
      realExpected: S * K,
      stayersComplete: 0,
      fewest: 0,
      missed: 0,
      leaves: 0,
      leavesDoneS: null,
      postP99Ms: null,
      redisCpuMs: null,
      redisLongestMs: null,
      errors: {}
    }
    if (reg.overBudget) {
      row.setupS = (performance.now() - t0) / 1000
      row.peakRssMiB = (await p.srv.call<Usage>('usage')).maxRssMiB
      return row
    }
    const st = await p.load.call<{ failures: number, ms: number }>('setup', {
      kind: 'lp', port: p.port, rooms: Array.from({ length: S }, () => [room]), concurrency: 50
    }, 600_000)
    await p.load.call('closeIdle')
    row.registered += S - st.failures
    row.realExpected = (S - st.failures) * K
    // The stayers read their join notices (of the stayers after them) and hold.
    await p.load.call('poll')
    const held = await waitHeld(p.srv, S, 300_000)
    row.setupS = (performance.now() - t0) / 1000
    row.sessionsBefore = await p.srv.call<number>('sessions')
    log(`  ${S - st.failures} stayers in ${f(st.ms / 1000)} s, ${held} polls held; ${row.sessionsBefore} sessions live; setup ${f(row.setupS)} s`)
    const before = await p.srv.call<MemoryFigures>('heap')
    row.heapBeforeMiB = before.heapUsed / MiB
    row.rssBeforeMiB = before.rss / MiB
    const redis = benchRedis()
    if (kind === 'plugin-redis' && redis !== undefined) await redisLatencyReset(redis)
    const redis0 = await redisNow(kind)

    await p.load.call('reset')
    await p.srv.call('loopStart')
    await p.srv.call('clock', { freeze: false })
    const released = performance.now()
    const dueUs = nowUs() + ttl * 1000
    const watch = p.srv.call<WatchFigures>('watchSessions', { from: row.sessionsBefore, target: row.sessionsBefore - reg.registered, timeoutMs: ttl + 120_000 }, ttl + 180_000)
    await sleep(Math.max(0, ttl - 500 - (performance.now() - released)))
    const post = p.load.call<{ sent: number, accepted: number, post: LatencySummary }>('publish', { count: K, rate: 2, s: -2, room, from: 0 }, 300_000)
    const w = await watch
    const posted = await post
    await p.load.call<LoadReport>('waitFor', { expected: row.realExpected, timeoutMs: 60_000 }, 90_000)
    // The storm is over when no leave notice has come for 3 s (a store that publishes them one by
    // one may still be at it when the real messages are in), at most 180 s after the expiry; the
    // polls that follow report what it made the stayers miss.
    let counters = await p.load.call<LoadReport>('counters')
    for (let quiet = 0; quiet < 3000 && nowUs() < dueUs + 180e6; quiet += 500) {
      await sleep(500)
      const now = await p.load.call<LoadReport>('counters')
      if (now.leaves !== counters.leaves) quiet = -500
      counters = now
    }
    row.loop = await p.srv.call<LoopFigures>('loopStop')
    const done = await p.load.call<{ complete: number, fewest: number }>('complete', { s: -2, count: K })
    const redis1 = await redisNow(kind)
    if (redis0 !== null && redis1 !== null) row.redisCpuMs = redisDelta(redis0, redis1).cpuMs
    if (kind === 'plugin-redis' && redis !== undefined) row.redisLongestMs = await redisLongestMs(redis)
    const after = await p.srv.call<MemoryFigures>('heap')
    const usage = await p.srv.call<Usage>('usage')

    row.heapAfterMiB = after.heapUsed / MiB
    row.rssAfterMiB = after.rss / MiB
    row.peakRssMiB = usage.maxRssMiB
    row.firstGoneS = w.firstDropMs === null ? null : (w.firstDropMs - ttl) / 1000
    row.allGoneS = w.goneMs === null ? null : (w.goneMs - ttl) / 1000
    row.remaining = w.last
    row.realDelivered = counters.delivered
    row.stayersComplete = done.complete
    row.fewest = done.fewest
    row.missed = counters.missed
    row.leaves = counters.leaves
    row.leavesDoneS = counters.lastLeaveUs === 0 ? null : (counters.lastLeaveUs - dueUs) / 1e6
    row.postP99Ms = posted.accepted > 0 ? posted.post.p99Ms : null
    row.errors = { ...counters.errors }
    if (posted.accepted < posted.sent) row.errors['real message refused'] = posted.sent - posted.accepted
    log(`  longest block ${f(row.loop.maxDelayMs)} ms (timer ${f(row.loop.timerLateMs)} ms late), gone ${row.allGoneS === null ? `no (${w.last} left)` : `${f(row.allGoneS, 2)} s`} after due, last leave ${f(row.leavesDoneS, 2)} s after due, ` +
      `heap ${f(row.heapBeforeMiB)} → ${f(row.heapAfterMiB)} MiB, real messages ${row.realDelivered}/${row.realExpected} (${done.complete}/${S} stayers complete), missed ${row.missed}, leaves ${row.leaves}` +
      (row.redisCpuMs === null ? '' : `, Redis CPU ${f(row.redisCpuMs)} ms, longest command ${f(row.redisLongestMs)} ms`) + ` ${errText(row.errors)}`)
    return row
  }, start)
}

/* Slow readers --------------------------------------------------------------------------------------- */

export interface SlowSample {
  /** Seconds since the slow polls were sent. */
  t: number
  heapMiB: number
  externalMiB: number
  rssMiB: number
  connections: number
  /** Bytes queued in the kernel (`ss`, Send-Q of the server port's sockets; Recv-Q of the clients'), MiB; null without `ss`. */
  kernelSendMiB: number | null
  kernelRecvMiB: number | null
}

/** Send-Q summed over the sockets whose local port is `port` (`sport`), or Recv-Q over those connected to it (`dport`), bytes. */
function kernelQueue (port: number, side: 'sport' | 'dport'): number | null {
  const r = spawnSync('ss', ['-tnH', 'state', 'all', `( ${side} = :${port} )`], { encoding: 'utf8' })
  if (r.status !== 0) return null
  let sum = 0
  for (const line of r.stdout.split('\n')) {
    const cols = line.trim().split(/\s+/)
    if (cols.length < 5 || cols[0] === 'LISTEN') continue
    sum += Number(side === 'sport' ? cols[2] : cols[1]) || 0
  }
  return sum
}

export interface SlowRow {
  server: ServerKind
  sessions: number
  polls: number
  messages: number
  bytes: number
  seconds: number
  base: SlowSample
  samples: SlowSample[]
  peakRssMiB: number
  errors: Record<string, number>
}

/**
 * Slow readers: `slowN` sessions with `slowMessages` messages of `slowBytes` queued for each (one
 * server-side broadcast each), then `slowPolls` polls per session, each on a connection of its
 * own, whose answers are never read. Every 2.5 s for `slowSeconds`: server memory (after GC), its
 * open connections, and what the kernel holds for them (each connection's socket buffers take up
 * to a few MiB of its answer before anything stays in the server process).
 */
export async function slowReaders (kind: ServerKind): Promise<SlowRow> {
  const { slowN: n, slowMessages: m, slowBytes: bytes, slowPolls: polls, slowSeconds: seconds } = cfg
  return await withServer(kind, `slow readers ${n}×${polls}`, async (p) => {
    const setup = await p.load.call<{ failures: number }>('setup', { kind: 'lp', port: p.port, rooms: Array.from({ length: n }, () => []), concurrency: 50 }, 120_000)
    await p.load.call('closeIdle')
    const bc = await p.srv.call<{ errors: number }>('broadcastEach', { count: m, bytes, s: -3 }, 120_000)
    const sample = async (t: number): Promise<SlowSample> => {
      const mem = await p.srv.call<MemoryFigures>('heap')
      const send = kernelQueue(p.port, 'sport')
      const recv = kernelQueue(p.port, 'dport')
      return {
        t,
        heapMiB: mem.heapUsed / MiB,
        externalMiB: mem.external / MiB,
        rssMiB: mem.rss / MiB,
        connections: await p.srv.call<number>('connections'),
        kernelSendMiB: send === null ? null : send / MiB,
        kernelRecvMiB: recv === null ? null : recv / MiB
      }
    }
    const base = await sample(0)
    await p.load.call('slowPolls', { polls })
    const sent = performance.now()
    const samples: SlowSample[] = []
    for (let i = 1; i * 2.5 <= seconds; i++) {
      await sleep(Math.max(0, i * 2500 - (performance.now() - sent)))
      samples.push(await sample(i * 2.5))
    }
    const usage = await p.srv.call<Usage>('usage')
    const errors: Record<string, number> = {}
    if (setup.failures > 0) errors['setup failed'] = setup.failures
    if (bc.errors > 0) errors['broadcast failed'] = bc.errors
    const row: SlowRow = { server: kind, sessions: n, polls, messages: m, bytes, seconds, base, samples, peakRssMiB: usage.maxRssMiB, errors }
    const peak = samples.reduce((a, b) => (b.heapMiB + b.externalMiB > a.heapMiB + a.externalMiB ? b : a), base)
    const last = samples[samples.length - 1] ?? base
    log(`  heap+external ${f(base.heapMiB + base.externalMiB)} → peak ${f(peak.heapMiB + peak.externalMiB)} MiB (${f(peak.t)} s) → ${f(last.heapMiB + last.externalMiB)} MiB at ${f(last.t)} s; ` +
      `RSS ${f(base.rssMiB)} → ${f(last.rssMiB)} MiB; kernel send queues ${f(last.kernelSendMiB)} MiB; connections open ${last.connections} of ${n * polls} ${errText(errors)}`)
    return row
  })
}

/* Redis broadcast cost ------------------------------------------------------------------------------- */

export interface RedisCostRow {
  sessions: number
  registered: number
  broadcasts: number
  /** Redis CPU (INFO cpu) per broadcast, less Redis's own background rate measured just before, ms. */
  redisCpuMs: number
  /** Script time (INFO commandstats, EVALSHA/EVAL usec) and calls per broadcast, background less. */
  scriptMs: number
  scriptCalls: number
  /** Commands the store sent per broadcast (from its client, background less); Node CPU per broadcast, ms. */
  commands: number | null
  nodeCpuMs: number
  /** How long a broadcast took, as the server saw it. */
  took: LatencySummary
  /** Redis memory added per recipient of a broadcast (bytes). */
  memoryPerRecipient: number
  redisLongestMs: number | null
  backgroundCpuMsPerS: number
  errors: Record<string, number>
}

/**
 * Redis broadcast cost: `n` idle sessions (registered, no poll held, no room), then
 * `rcostBroadcasts` server-side broadcasts to everyone one after the other. Redis is read before
 * and after (INFO cpu, commandstats); a 2 s idle window just before gives Redis's background rate
 * (its own cron, the plugin's sweeps), taken off the figures.
 */
export async function redisCost (n: number): Promise<RedisCostRow> {
  const redis = benchRedis()
  if (redis === undefined) throw new Error('no Redis')
  const b = cfg.rcostBroadcasts
  return await withServer('plugin-redis', `redis broadcast cost N=${n}`, async (p) => {
    const reg = await p.load.call<{ registered: number, failures: number, ms: number }>('register', {
      port: p.port, count: n, rooms: [], concurrency: 100, budgetMs: 300_000
    }, 420_000)
    log(`  ${reg.registered} idle sessions registered in ${f(reg.ms / 1000)} s`)
    await sleep(1000)
    await p.srv.call('mark')
    const idle0 = await redisSnapshot(redis.info)
    const idleStart = performance.now()
    await sleep(2000)
    const idle1 = await redisSnapshot(redis.info)
    const idleS = (performance.now() - idleStart) / 1000
    const idleCommands = (await p.srv.call<Usage>('usage')).redisCommands ?? 0
    const bg = redisDelta(idle0, idle1)
    await redisLatencyReset(redis)
    await p.srv.call('mark')
    const r0 = await redisSnapshot(redis.info)
    const windowStart = performance.now()
    const res = await p.srv.call<{ took: LatencySummary, errors: number }>('broadcastEach', { count: b }, 600_000)
    const r1 = await redisSnapshot(redis.info)
    const windowS = (performance.now() - windowStart) / 1000
    const usage = await p.srv.call<Usage>('usage')
    const d = redisDelta(r0, r1)
    const perS = (v: number): number => v / idleS
    const row: RedisCostRow = {
      sessions: n,
      registered: reg.registered,
      broadcasts: b,
      redisCpuMs: (d.cpuMs - perS(bg.cpuMs) * windowS) / b,
      scriptMs: (d.scriptUsec - perS(bg.scriptUsec) * windowS) / 1000 / b,
      scriptCalls: (d.scriptCalls - perS(bg.scriptCalls) * windowS) / b,
      commands: usage.redisCommands === null ? null : (usage.redisCommands - perS(idleCommands) * windowS) / b,
      nodeCpuMs: usage.cpuMs / b,
      took: res.took,
      memoryPerRecipient: d.usedMemory / Math.max(b * reg.registered, 1),
      redisLongestMs: await redisLongestMs(redis),
      backgroundCpuMsPerS: perS(bg.cpuMs),
      errors: res.errors > 0 ? { 'broadcast failed': res.errors } : {}
    }
    log(`  Redis CPU ${f(row.redisCpuMs, 2)} ms per broadcast (scripts ${f(row.scriptMs, 2)} ms, ${f(row.scriptCalls, 2)} calls; background ${f(row.backgroundCpuMsPerS, 2)} ms/s), ` +
      `broadcast p50 ${f(row.took.p50Ms)} max ${f(row.took.maxMs)} ms, Node ${f(row.nodeCpuMs, 2)} ms, ${f(row.memoryPerRecipient)} B of Redis memory per recipient ${errText(row.errors)}`)
    return row
  })
}
