/**
 * The report of `npm run bench`: number formatting, the markdown tables of each scenario, the
 * machine it ran on, and the targets checked against the floor. bench/run.ts writes what
 * `render` returns to bench/results/latest.md (and the same rows to latest.json).
 */
import os from 'node:os'
import { cfg, nth, WARM } from './config.js'
import type { ChatRow, DeliveryRow, IdleRow } from './scenarios.js'
import type { RedisCostRow, SlowRow, StormRow } from './scenarios-stress.js'
import type { ServerKind } from './server-proc.js'

/** The rows of the stress scenarios (bench/scenarios-stress.ts). */
export interface StressRows { storm: StormRow[], slow: SlowRow[], redisCost: RedisCostRow[] }

export interface Target { name: string, figure: string, limit: string, pass: boolean | null }

export function log (...args: unknown[]): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args)
}

/* Tables --------------------------------------------------------------------------------------------- */

export function f (v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a'
  if (Math.abs(v) >= 100) return v.toFixed(0)
  return v.toFixed(digits)
}

function pct (a: number, b: number): string {
  if (b === 0) return 'n/a'
  const p = a / b * 100
  return `${p === 100 ? '100' : p.toFixed(2)} %`
}

export function errText (e: Record<string, number>): string {
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

export function machine (): Record<string, string | number> {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    pinning: cfg.pin.note
  }
}

const ratio = (a: number, b: number | undefined): string => b === undefined || !(b > 0) ? 'n/a' : `${f(a / b, 2)}×`

export function median (values: number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

const medianOrNull = (values: Array<number | null>): number | null => values.some((v) => v === null) ? null : median(values as number[])

/**
 * One row for several rounds of the same server and setting: the median of each figure (each on
 * its own, so a median row is not one of the rounds), deliveries and errors summed.
 */
export function medianRow (rows: DeliveryRow[]): DeliveryRow {
  if (rows.length === 1) return rows[0]
  const m = (pick: (r: DeliveryRow) => number): number => median(rows.map(pick))
  const errors: Record<string, number> = {}
  for (const r of rows) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v
  return {
    ...rows[0],
    round: 0,
    delivered: rows.reduce((a, r) => a + r.delivered, 0),
    expected: rows.reduce((a, r) => a + r.expected, 0),
    duplicates: rows.reduce((a, r) => a + r.duplicates, 0),
    missed: rows.reduce((a, r) => a + r.missed, 0),
    latency: {
      count: rows.reduce((a, r) => a + r.latency.count, 0),
      p50Ms: m((r) => r.latency.p50Ms),
      p90Ms: m((r) => r.latency.p90Ms),
      p99Ms: m((r) => r.latency.p99Ms),
      maxMs: Math.max(...rows.map((r) => r.latency.maxMs)),
      meanMs: m((r) => r.latency.meanMs)
    },
    cpuMs: m((r) => r.cpuMs),
    cpuPer1k: m((r) => r.cpuPer1k),
    redisCpuPer1k: medianOrNull(rows.map((r) => r.redisCpuPer1k)),
    redisCommandsPerDelivery: medianOrNull(rows.map((r) => r.redisCommandsPerDelivery)),
    redisCommandsPerResponse: medianOrNull(rows.map((r) => r.redisCommandsPerResponse)),
    redisScriptsPerDelivery: medianOrNull(rows.map((r) => r.redisScriptsPerDelivery)),
    peakRssMiB: m((r) => r.peakRssMiB),
    msgsPerResponse: m((r) => r.msgsPerResponse),
    cpuPerResponseUs: m((r) => r.cpuPerResponseUs),
    requestsPerDelivery: m((r) => r.requestsPerDelivery),
    serverCpuPct: m((r) => r.serverCpuPct),
    loadCpuPct: m((r) => r.loadCpuPct),
    errors,
    broadcastErrors: rows.reduce((a, r) => a + r.broadcastErrors, 0),
    broadcastLagMs: Math.max(...rows.map((r) => r.broadcastLagMs)),
    timedOut: rows.some((r) => r.timedOut)
  }
}

/** The settings (N, rate) of `rows` in the order they ran, and per server the median of its rounds. */
function bySetting (rows: DeliveryRow[]): Array<{ clients: number, rate: number, messages: number, servers: Map<ServerKind, { median: DeliveryRow, rounds: DeliveryRow[] }> }> {
  const out = new Map<string, { clients: number, rate: number, messages: number, servers: Map<ServerKind, { median: DeliveryRow, rounds: DeliveryRow[] }> }>()
  for (const r of rows) {
    const key = `${r.clients}@${r.rate}`
    let setting = out.get(key)
    if (setting === undefined) out.set(key, (setting = { clients: r.clients, rate: r.rate, messages: r.messages, servers: new Map() }))
    const s = setting.servers.get(r.server)
    if (s === undefined) setting.servers.set(r.server, { median: r, rounds: [r] })
    else s.rounds.push(r)
  }
  for (const setting of out.values()) for (const s of setting.servers.values()) s.median = medianRow(s.rounds)
  return [...out.values()]
}

/** "12.3 (11.9–13.0)": the median and the range of the rounds. */
function withRange (median: number, rounds: number[], digits = 1): string {
  if (rounds.length < 2) return f(median, digits)
  return `${f(median, digits)} (${f(Math.min(...rounds), digits)}–${f(Math.max(...rounds), digits)})`
}

/**
 * For each fan-out setting (N, rate) of the run: server CPU per 1 000 deliveries of every server
 * (the median of its rounds), against the floor's and socket.io's in the same run, p99 latency,
 * and for the Redis store Redis's own CPU and the commands it was sent per delivery. Then the idle
 * scenario's RSS per client holding a poll, against the floor's.
 */
function fanoutComparison (fan: DeliveryRow[], idleRows: IdleRow[]): string[] {
  const lines: string[] = []
  for (const { clients, rate, messages, servers } of bySetting(fan)) {
    const floor = servers.get('floor')?.median
    const sio = servers.get('socketio')?.median
    const rounds = Math.max(...[...servers.values()].map((s) => s.rounds.length))
    const withRedis = (r: DeliveryRow, base: DeliveryRow | undefined): string =>
      ratio(r.cpuPer1k, base?.cpuPer1k) + (r.redisCpuPer1k === null ? '' : ` (${ratio(r.cpuPer1k + r.redisCpuPer1k, base?.cpuPer1k)} with Redis)`)
    const first = [...servers.values()][0].median
    const who = first.publisher === 'client' ? 'sent by a publisher client through POST /messages' : 'broadcast by the server'
    lines.push(`## Fan-out N = ${clients} at ${rate}/s (${messages} messages ${who}): against the floor and socket.io${rounds > 1 ? `, median of ${rounds} interleaved rounds` : ''}`, '')
    lines.push(table(['server', 'CPU ms / 1k deliveries' + (rounds > 1 ? ' (rounds)' : ''), 'vs floor', 'vs socket.io', 'p99 ms' + (rounds > 1 ? ' (rounds)' : ''), 'p99 vs socket.io', 'msgs / response', 'Redis commands / delivery (scripts)', 'delivered'],
      [...servers.entries()].map(([server, { median: r, rounds: rs }]) => [
        server, withRange(r.cpuPer1k, rs.map((x) => x.cpuPer1k), 2) + (r.redisCpuPer1k === null ? '' : ` (+${f(r.redisCpuPer1k, 2)} Redis)`),
        withRedis(r, floor), withRedis(r, sio), withRange(r.latency.p99Ms, rs.map((x) => x.latency.p99Ms)), ratio(r.latency.p99Ms, sio?.latency.p99Ms), f(r.msgsPerResponse, 2),
        r.redisCommandsPerDelivery === null ? '' : `${f(r.redisCommandsPerDelivery, 2)} (${f(r.redisScriptsPerDelivery, 2)})`, pct(r.delivered, r.expected)
      ])), '')
  }
  const idleFloor = idleRows.find((r) => r.server === 'floor')
  if (fan.length > 0 && idleRows.length > 0) {
    lines.push('RSS per connected client holding a poll (idle scenario, after GC, over a warmed-up baseline): ' +
      idleRows.map((r) => `${r.server} ${f(r.rssPerClient / 1024)} KiB${idleFloor !== undefined && r !== idleFloor ? ` (${ratio(r.rssPerClient, idleFloor.rssPerClient)} floor)` : ''}`).join(', ') + '.', '')
  }
  return lines
}

export function targets (fan: DeliveryRow[], burst: DeliveryRow[], idleRows: IdleRow[], stress: StressRows): Target[] {
  const out: Target[] = []
  // The median of a server's rounds (fan-out runs several per setting).
  const find = (rows: DeliveryRow[], server: ServerKind, n: number, rate?: number): DeliveryRow | undefined => {
    const matching = rows.filter((r) => r.server === server && r.clients === n && (rate === undefined || r.rate === rate))
    return matching.length === 0 ? undefined : medianRow(matching)
  }
  for (const plugin of ['plugin-memory', 'plugin-redis'] as const) {
    const store = plugin === 'plugin-memory' ? 'memory store' : 'Redis store (node process only)'
    for (const n of cfg.fanoutN) {
      const pr = find(fan, plugin, n)
      const fl = find(fan, 'floor', n)
      if (pr === undefined || fl === undefined) continue
      const vsFloor = pr.cpuPer1k / fl.cpuPer1k
      out.push({ name: `fan-out N=${n}: server CPU per delivery vs floor, ${store}`, figure: `${f(vsFloor, 2)}× (${f(pr.cpuPer1k)} vs ${f(fl.cpuPer1k)} ms/1k)`, limit: '≤ 1.25×', pass: vsFloor <= 1.25 })
      const sio = find(fan, 'socketio', n)
      if (sio !== undefined) {
        out.push({ name: `fan-out N=${n}: server CPU per delivery vs socket.io, ${store}`, figure: `${f(pr.cpuPer1k / sio.cpuPer1k, 2)}× (${f(pr.cpuPer1k)} vs ${f(sio.cpuPer1k)} ms/1k)`, limit: '< 1×', pass: pr.cpuPer1k < sio.cpuPer1k })
      }
    }
    const top = Math.max(...cfg.burstRates)
    const pb = find(burst, plugin, cfg.burstClients, top)
    const fb = find(burst, 'floor', cfg.burstClients, top)
    if (pb !== undefined && fb !== undefined) {
      const vsFloor = pb.cpuPer1k / fb.cpuPer1k
      // A server that falls behind carries far more per response, which makes each delivery cheap: no comparison then.
      const batches = pb.msgsPerResponse / fb.msgsPerResponse
      const comparable = batches <= 2 && batches >= 0.5
      out.push({
        name: `burst ${top}/s: server CPU per delivery vs floor, ${store}`,
        figure: `${f(vsFloor, 2)}× (${f(pb.cpuPer1k)} vs ${f(fb.cpuPer1k)} ms/1k)` +
          (comparable ? '' : `; not comparable: ${f(pb.msgsPerResponse)} vs ${f(fb.msgsPerResponse)} msgs/response (p50 latency ${f(pb.latency.p50Ms)} vs ${f(fb.latency.p50Ms)} ms)`),
        limit: '≤ 1.2×',
        pass: comparable ? vsFloor <= 1.2 : null
      })
    }
    const n0 = cfg.fanoutN[0]
    const pl = find(fan, plugin, n0)
    const fl = find(fan, 'floor', n0)
    if (pl !== undefined && fl !== undefined) {
      out.push({ name: `fan-out N=${n0}: p99 latency vs floor, ${store}`, figure: `${f(pl.latency.p99Ms)} vs ${f(fl.latency.p99Ms)} ms (${f(pl.latency.p99Ms / fl.latency.p99Ms, 2)}×)`, limit: '≤ floor + 20 %', pass: pl.latency.p99Ms <= fl.latency.p99Ms * 1.2 })
    }
    const sl = find(fan, 'socketio', n0)
    if (pl !== undefined && sl !== undefined) {
      out.push({ name: `fan-out N=${n0}: p99 latency vs socket.io, ${store}`, figure: `${f(pl.latency.p99Ms)} vs ${f(sl.latency.p99Ms)} ms (${f(pl.latency.p99Ms / sl.latency.p99Ms, 2)}×)`, limit: '≤ socket.io', pass: pl.latency.p99Ms <= sl.latency.p99Ms })
    }
    if (plugin === 'plugin-redis') {
      const mem = find(fan, 'plugin-memory', n0)
      if (pl !== undefined && mem !== undefined && pl.redisCpuPer1k !== null) {
        const both = pl.cpuPer1k + pl.redisCpuPer1k
        out.push({ name: `fan-out N=${n0}: Node + Redis CPU per delivery vs the memory store`, figure: `${f(both / mem.cpuPer1k, 2)}× (${f(pl.cpuPer1k)} + ${f(pl.redisCpuPer1k)} vs ${f(mem.cpuPer1k)} ms/1k)`, limit: '≤ 1.3×', pass: both <= mem.cpuPer1k * 1.3 })
        out.push({ name: `fan-out N=${n0}: median latency vs the memory store, Redis store`, figure: `${f(pl.latency.p50Ms)} vs ${f(mem.latency.p50Ms)} ms`, limit: '≤ memory + 15 ms', pass: pl.latency.p50Ms <= mem.latency.p50Ms + 15 })
      }
      if (pl !== undefined && pl.redisCommandsPerResponse !== null) {
        out.push({ name: `fan-out N=${n0}: Redis commands per poll cycle (response), Redis store`, figure: `${f(pl.redisCommandsPerResponse, 2)} (${f(pl.redisScriptsPerDelivery, 2)} script calls per delivery)`, limit: '≤ 2', pass: pl.redisCommandsPerResponse <= 2 })
      }
    }
    const id = idleRows.find((r) => r.server === plugin)
    if (id !== undefined && id.perSession !== null) {
      out.push({ name: `heap per idle session, ${store}`, figure: `${Math.round(id.perSession)} B`, limit: '≤ 1024 B', pass: id.perSession <= 1024 })
    }
    const idFloor = idleRows.find((r) => r.server === 'floor')
    if (id !== undefined && idFloor !== undefined && idFloor.rssPerClient > 0) {
      const vsFloor = id.rssPerClient / idFloor.rssPerClient
      out.push({ name: `RSS per session with a held poll vs floor, ${store}`, figure: `${f(vsFloor, 2)}× (${f(id.rssPerClient / 1024)} vs ${f(idFloor.rssPerClient / 1024)} KiB)`, limit: '≤ 1.2×', pass: vsFloor <= 1.2 })
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
  out.push(...stressTargets(stress))
  return out
}

const storeName = (server: ServerKind): string => server === 'plugin-redis' ? 'Redis store' : 'memory store'

/** The limits of issue 13 (storm, slow readers) and issue 10 (Redis broadcast cost). */
function stressTargets ({ storm, slow, redisCost }: StressRows): Target[] {
  const out: Target[] = []
  for (const r of storm) {
    const what = `expiry storm ${r.sessions}+${r.stayers}, ${storeName(r.server)}`
    if (r.overBudget || r.loop === null) {
      out.push({ name: `${what}: set up within ${cfg.stormSetupS} s`, figure: `${r.registered} of ${r.sessions} registered in ${f(r.setupS)} s, then given up`, limit: `${r.sessions} + ${r.stayers}`, pass: false })
      continue
    }
    out.push({ name: `${what}: longest event-loop block`, figure: `${f(r.loop.maxDelayMs)} ms`, limit: '< 100 ms', pass: r.loop.maxDelayMs < 100 })
    out.push({ name: `${what}: storm's sessions gone after they were due`, figure: r.allGoneS === null ? `not within 120 s (${r.remaining} live)` : `${f(r.allGoneS, 2)} s`, limit: '≤ 5 s', pass: r.allGoneS !== null && r.allGoneS <= 5 })
    out.push({
      name: `${what}: every real message to every stayer, missed 0`,
      figure: `${r.realDelivered}/${r.realExpected}, missed ${r.missed}`,
      limit: `${r.realExpected}/${r.realExpected}, 0`,
      pass: r.realDelivered === r.realExpected && r.missed === 0
    })
  }
  for (const r of slow) {
    const last = r.samples[r.samples.length - 1] ?? r.base
    const what = `slow readers ${r.sessions}×${r.polls}, ${storeName(r.server)}`
    out.push({ name: `${what}: connections still open after ${f(last.t)} s`, figure: `${last.connections} of ${r.sessions * r.polls}`, limit: '0', pass: last.connections === 0 })
    const grown = last.heapMiB + last.externalMiB - r.base.heapMiB - r.base.externalMiB
    out.push({ name: `${what}: heap + external after ${f(last.t)} s over the baseline`, figure: `${f(grown)} MiB`, limit: '≤ 10 MiB', pass: grown <= 10 })
    if (last.kernelSendMiB !== null) {
      // A connection closed with its answer unsent keeps it in the kernel until the kernel gives up on it.
      out.push({ name: `${what}: kernel send queues of the server's sockets after ${f(last.t)} s`, figure: `${f(last.kernelSendMiB)} MiB`, limit: '≤ 1 MiB', pass: last.kernelSendMiB <= 1 })
    }
  }
  if (redisCost.length > 0) {
    const sorted = [...redisCost].sort((a, b) => a.sessions - b.sessions)
    const small = sorted[0]
    const big = sorted[sorted.length - 1]
    out.push({ name: `Redis CPU per broadcast, ${big.sessions} idle sessions`, figure: `${f(big.redisCpuMs, 2)} ms`, limit: '≤ 2 ms', pass: big.redisCpuMs <= 2 })
    if (big !== small) {
      out.push({ name: `Redis CPU per broadcast, ${big.sessions} vs ${small.sessions} sessions`, figure: `${f(big.redisCpuMs / small.redisCpuMs, 2)}× (${f(big.redisCpuMs, 2)} vs ${f(small.redisCpuMs, 2)} ms)`, limit: '≤ 3×', pass: big.redisCpuMs <= small.redisCpuMs * 3 })
    }
  }
  return out
}

/* Tables of the stress scenarios ------------------------------------------------------------------ */

function stressTables ({ storm, slow, redisCost }: StressRows, redisNote: string): string[] {
  const lines: string[] = []
  if (storm.length > 0) {
    const r0 = storm[0]
    lines.push(`## Expiry storm: ${r0.sessions} sessions of one room expire together, ${r0.stayers} members stay and poll (sessionTtl ${r0.ttlMs} ms, ${r0.messages} real messages posted around the expiry)`, '')
    lines.push(table(['server', 'setup s', 'longest block ms (timer late)', 'first gone s', 'all gone s', 'last leave notice s', 'real messages', 'stayers complete', 'missed', 'leave notices / stayer', 'heap MiB before → after', 'RSS MiB before → after (peak)', 'Redis CPU ms (longest command ms)', 'errors'],
      storm.map((r) => r.overBudget || r.loop === null
        ? [r.server, `gave up after ${f(r.setupS)} s (budget ${cfg.stormSetupS} s): ${r.registered} of ${r.sessions} registered`, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', `(peak ${f(r.peakRssMiB)})`, '', '']
        : [
            r.server, f(r.setupS), `${f(r.loop.maxDelayMs)} (${f(r.loop.timerLateMs)})`, r.firstGoneS === null ? 'n/a' : f(r.firstGoneS, 2),
            r.allGoneS === null ? `no (${r.remaining} live)` : f(r.allGoneS, 2), r.leavesDoneS === null ? 'none' : f(r.leavesDoneS, 2), `${r.realDelivered}/${r.realExpected}`, `${r.stayersComplete}/${r.stayers} (fewest ${r.fewest})`,
            String(r.missed), f(r.leaves / Math.max(r.stayers, 1)), `${f(r.heapBeforeMiB)} → ${f(r.heapAfterMiB)}`, `${f(r.rssBeforeMiB)} → ${f(r.rssAfterMiB)} (${f(r.peakRssMiB)})`,
            r.redisCpuMs === null ? '' : `${f(r.redisCpuMs)} (${r.redisLongestMs === null ? 'n/a' : r.redisLongestMs === 0 ? '< 10' : f(r.redisLongestMs)})`, errText(r.errors) || '0'
          ])), '')
    lines.push('"first / all gone": seconds from the moment the sessions were due to expire to the first and the last of them removed (stats().sessions); "last leave notice": to the last leave notice a stayer received. ' +
      'The window ends once no leave notice has come for 3 s. "missed": summed over every poll response the stayers got from the release of the clock on. "setup" includes every registration, the stayers\' first polls and the reading of their join notices.', '')
  }
  if (slow.length > 0) {
    const r0 = slow[0]
    lines.push(`## Slow readers: ${r0.sessions} sessions, ${r0.messages} messages of ${r0.bytes} B queued for each, ${r0.polls} poll${r0.polls === 1 ? '' : 's'} per session (each on a connection of its own) whose answers are never read`, '')
    const mib = (v: number | null): string => v === null ? 'n/a' : f(v)
    lines.push(table(['server', 'at s', 'heap MiB', 'external MiB', 'RSS MiB', 'connections open', 'kernel: server send queues MiB', 'kernel: client receive queues MiB'],
      slow.flatMap((r) => [r.base, ...r.samples].map((x, i) => [
        i === 0 ? `${r.server} (before)` : r.server, f(x.t), f(x.heapMiB), f(x.externalMiB), f(x.rssMiB), String(x.connections), mib(x.kernelSendMiB), mib(x.kernelRecvMiB)
      ]))), '')
    lines.push('Memory after GC. Kernel queues from `ss` (the server port\'s sockets, closed ones that still hold data included): memory outside the server process that its connections hold. ' +
      '`responseTimeout` (an option of the next version, default 10 000 ms) is not passed: what a server does by default is measured.', '')
  }
  if (redisCost.length > 0) {
    lines.push(`## Redis broadcast cost: server-side broadcasts to N idle sessions (no poll held), one after the other (${redisNote})`, '')
    const small = [...redisCost].sort((a, b) => a.sessions - b.sessions)[0]
    lines.push(table(['idle sessions', 'broadcasts', 'Redis CPU ms / broadcast', 'vs fewest sessions', 'script ms / broadcast', 'script calls / broadcast', 'commands sent / broadcast', 'broadcast p50 / max ms', 'longest Redis command ms', 'Node CPU ms / broadcast', 'Redis memory B / recipient', 'errors'],
      redisCost.map((r) => [
        String(r.registered), String(r.broadcasts), f(r.redisCpuMs, 2), ratio(r.redisCpuMs, small.redisCpuMs), f(r.scriptMs, 2), f(r.scriptCalls, 2), r.commands === null ? 'n/a' : f(r.commands, 2),
        `${f(r.took.p50Ms)} / ${f(r.took.maxMs)}`, r.redisLongestMs === null ? 'n/a' : r.redisLongestMs === 0 ? '< 10' : f(r.redisLongestMs), f(r.nodeCpuMs, 2), f(r.memoryPerRecipient), errText(r.errors) || '0'
      ])), '')
    lines.push(`Redis's background CPU (its own cron, the plugin's sweeps), measured over 2 s just before, is taken off: ${redisCost.map((r) => `${f(r.backgroundCpuMsPerS, 2)} ms/s`).join(', ')}.`, '')
  }
  return lines
}

export function render (meta: Record<string, unknown>, fan: DeliveryRow[], burst: DeliveryRow[], idleRows: IdleRow[], chatRows: ChatRow[], stress: StressRows, tg: Target[]): string {
  const m = meta.machine as Record<string, string | number>
  const lines: string[] = []
  lines.push(`# Benchmark results (${String(meta.date)})`, '')
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}${cfg.quick ? ' — QUICK run (small N)' : ''}${cfg.profile ? ' — PROFILED run (CPU figures inflated)' : ''}.`)
  const la = meta.loadAverage as { atStart: number[], atEnd: number[] }
  lines.push(`Server and load generator are separate processes on 127.0.0.1 (${cfg.pin.server === null ? 'sharing the machine\'s CPUs' : cfg.pin.note}; Redis and the harness unpinned). ` +
    'CPU, RSS and heap are read by each server process about itself. ' +
    (meta.redis === undefined ? '' : `Redis: ${String(meta.redis)}. `) +
    `Load average (1/5/15 min) at start ${la.atStart.join(' / ')}, at end ${la.atEnd.join(' / ')} (other work on the machine shows here; latency suffers from it most).`, '')
  const delivHead = ['server', 'round', 'N', 'rate/s', 'delivered', 'p50 ms', 'p99 ms', 'max ms', 'CPU ms / 1k deliveries', 'msgs / response', 'CPU µs / response', 'CPU % server / load', 'peak RSS MiB', 'errors']
  const delivRow = (r: DeliveryRow): string[] => [
    r.server, String(r.round), String(r.clients), String(r.rate), pct(r.delivered, r.expected),
    f(r.latency.p50Ms), f(r.latency.p99Ms), f(r.latency.maxMs),
    f(r.cpuPer1k, 2) + (r.redisCpuPer1k === null ? '' : ` (+${f(r.redisCpuPer1k, 2)} Redis)`),
    f(r.msgsPerResponse, 2), f(r.cpuPerResponseUs), `${f(r.serverCpuPct, 0)} / ${f(r.loadCpuPct, 0)}`, f(r.peakRssMiB), String(Object.values(r.errors).reduce((a, b) => a + b, 0) + r.broadcastErrors)
  ]
  lines.push(...fanoutComparison(fan, idleRows))
  if (fan.length > 0) {
    const who = cfg.fanoutPublisher === 'client' ? 'a publisher client sends to everyone through POST /messages' : 'the server broadcasts'
    lines.push(`## Fan-out: N held polls, ${who} at a steady rate (${cfg.fanoutN.map((n, i) => `N = ${n}: ${nth(cfg.fanoutMessages, i)} at ${nth(cfg.fanoutRate, i)}/s, ${nth(cfg.fanoutRounds, i)} round${nth(cfg.fanoutRounds, i) === 1 ? '' : 's'}`).join('; ')}), every round`, '')
    lines.push(table(delivHead, fan.map(delivRow)), '')
  }
  if (burst.length > 0) {
    lines.push(`## Burst: ${cfg.burstClients} clients, broadcasts at the given rate (${cfg.burstRates.map((r, i) => `${r}/s for ${nth(cfg.burstSeconds, i)} s`).join(', ')})`, '')
    lines.push(table(delivHead, burst.map(delivRow)), '')
  }
  if (idleRows.length > 0) {
    lines.push('## Idle: heap after GC and RSS, delta over a warmed-up baseline', '')
    lines.push(table(['server', 'sessions', 'heap / idle session', 'heap / held poll', 'heap / session + held poll', 'RSS / session + held poll', 'held polls', 'one broadcast delivered', 'peak RSS MiB', 'errors'],
      idleRows.map((r) => [
        r.server, String(r.sessions), r.perSession === null ? 'n/a' : `${Math.round(r.perSession)} B`, r.perHeldPoll === null ? 'n/a' : `${Math.round(r.perHeldPoll)} B`,
        `${Math.round(r.perClient)} B`, `${f(r.rssPerClient / 1024)} KiB`, String(r.held), `${r.delivered}/${r.expected}`, f(r.peakRssMiB), String(Object.values(r.errors).reduce((a, b) => a + b, 0))
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
  lines.push(...stressTables(stress, String(meta.redis ?? 'no Redis')))
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
