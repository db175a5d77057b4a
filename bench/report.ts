/**
 * The report of `npm run bench`: number formatting, the markdown tables of each scenario, the
 * machine it ran on, and the targets checked against the floor. bench/run.ts writes what
 * `render` returns to bench/results/latest.md (and the same rows to latest.json).
 */
import os from 'node:os'
import { cfg, nth, WARM } from './config.js'
import type { ChatRow, DeliveryRow, IdleRow } from './scenarios.js'
import type { ServerKind } from './server-proc.js'

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

/**
 * For each fan-out setting (N, rate) of the run: server CPU per 1 000 deliveries of every server,
 * against the floor's and socket.io's in the same run, and p99 latency (the Redis store: the Node
 * process, then with Redis's own CPU added).
 */
function fanoutComparison (fan: DeliveryRow[]): string[] {
  const lines: string[] = []
  const settings = [...new Map(fan.map((r) => [`${r.clients}@${r.rate}`, r])).values()]
  for (const { clients, rate, messages } of settings) {
    const rows = fan.filter((r) => r.clients === clients && r.rate === rate)
    const floor = rows.find((r) => r.server === 'floor')
    const sio = rows.find((r) => r.server === 'socketio')
    const withRedis = (r: DeliveryRow, base: DeliveryRow | undefined): string =>
      ratio(r.cpuPer1k, base?.cpuPer1k) + (r.redisCpuPer1k === null ? '' : ` (${ratio(r.cpuPer1k + r.redisCpuPer1k, base?.cpuPer1k)} with Redis)`)
    lines.push(`## Fan-out N = ${clients} at ${rate}/s (${messages} broadcasts): against the floor and socket.io`, '')
    lines.push(table(['server', 'CPU ms / 1k deliveries', 'vs floor', 'vs socket.io', 'p99 ms', 'p99 vs socket.io', 'msgs / response', 'delivered'],
      rows.map((r) => [
        r.server, f(r.cpuPer1k, 2) + (r.redisCpuPer1k === null ? '' : ` (+${f(r.redisCpuPer1k, 2)} Redis)`),
        withRedis(r, floor), withRedis(r, sio), f(r.latency.p99Ms), ratio(r.latency.p99Ms, sio?.latency.p99Ms), f(r.msgsPerResponse, 2), pct(r.delivered, r.expected)
      ])), '')
  }
  return lines
}

export function targets (fan: DeliveryRow[], burst: DeliveryRow[], idleRows: IdleRow[]): Target[] {
  const out: Target[] = []
  const find = (rows: DeliveryRow[], server: ServerKind, n: number, rate?: number): DeliveryRow | undefined =>
    rows.find((r) => r.server === server && r.clients === n && (rate === undefined || r.rate === rate))
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
  return out
}

export function render (meta: Record<string, unknown>, fan: DeliveryRow[], burst: DeliveryRow[], idleRows: IdleRow[], chatRows: ChatRow[], tg: Target[]): string {
  const m = meta.machine as Record<string, string | number>
  const lines: string[] = []
  lines.push(`# Benchmark results (${String(meta.date)})`, '')
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}${cfg.quick ? ' — QUICK run (small N)' : ''}${cfg.profile ? ' — PROFILED run (CPU figures inflated)' : ''}.`)
  const la = meta.loadAverage as { atStart: number[], atEnd: number[] }
  lines.push(`Server and load generator are separate processes on 127.0.0.1 (${cfg.pin.server === null ? 'sharing the machine\'s CPUs' : cfg.pin.note}; Redis and the harness unpinned). ` +
    'CPU, RSS and heap are read by each server process about itself. ' +
    `Load average (1/5/15 min) at start ${la.atStart.join(' / ')}, at end ${la.atEnd.join(' / ')} (other work on the machine shows here; latency suffers from it most).`, '')
  const delivHead = ['server', 'N', 'rate/s', 'delivered', 'p50 ms', 'p99 ms', 'max ms', 'CPU ms / 1k deliveries', 'msgs / response', 'CPU µs / response', 'CPU % server / load', 'peak RSS MiB', 'errors']
  const delivRow = (r: DeliveryRow): string[] => [
    r.server, String(r.clients), String(r.rate), pct(r.delivered, r.expected),
    f(r.latency.p50Ms), f(r.latency.p99Ms), f(r.latency.maxMs),
    f(r.cpuPer1k, 2) + (r.redisCpuPer1k === null ? '' : ` (+${f(r.redisCpuPer1k, 2)} Redis)`),
    f(r.msgsPerResponse, 2), f(r.cpuPerResponseUs), `${f(r.serverCpuPct, 0)} / ${f(r.loadCpuPct, 0)}`, f(r.peakRssMiB), String(Object.values(r.errors).reduce((a, b) => a + b, 0) + r.broadcastErrors)
  ]
  lines.push(...fanoutComparison(fan))
  if (fan.length > 0) {
    lines.push(`## Fan-out: N held polls, server broadcasts at a steady rate (${cfg.fanoutN.map((n, i) => `N = ${n}: ${nth(cfg.fanoutMessages, i)} at ${nth(cfg.fanoutRate, i)}/s`).join('; ')})`, '')
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
