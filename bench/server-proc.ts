/**
 * The server process of one benchmark run: `tsx bench/server-proc.ts` forked by bench/run.ts.
 * It starts one server (floor, socket.io, or the plugin with a store), runs the server-side
 * broadcast trigger, and reports its own cost (CPU time since a mark, peak RSS, heap after GC,
 * open connections, the longest event-loop block, commands sent to Redis) over IPC.
 */
import { writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { Session } from 'node:inspector'
import type { Socket } from 'node:net'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { serve } from './ipc.js'
import { Histogram, nowUs, sleep, type LatencySummary } from './stats.js'

export type ServerKind = 'floor' | 'socketio' | 'plugin-memory' | 'plugin-redis'

export interface BenchServer {
  port: number
  /** The HTTP server, to count requests. */
  http: Server
  /** Sends `data` to every session (the server-side broadcast API of each server). */
  broadcast: (data: unknown) => unknown
  /** Polls held right now. */
  held: () => number | Promise<number>
  /** Live sessions (or connected clients). */
  sessions: () => number | Promise<number>
  /** Commands sent to Redis so far (the Redis store only). */
  redisCommands?: () => number
  close: () => Promise<void>
}

export interface Usage {
  cpuMs: number
  userMs: number
  systemMs: number
  /** Peak resident set size of the process so far, MiB. */
  maxRssMiB: number
  rssMiB: number
  /** HTTP requests received since the mark. */
  requests: number
  /** Commands sent to Redis since the mark (the Redis store), else null. */
  redisCommands: number | null
}

export interface MemoryFigures {
  heapUsed: number
  external: number
  arrayBuffers: number
  rss: number
}

export interface LoopFigures {
  /** Longest event-loop delay seen by perf_hooks.monitorEventLoopDelay (10 ms resolution), ms. */
  maxDelayMs: number
  p99DelayMs: number
  /** Worst lateness of a 10 ms interval timer, ms. */
  timerLateMs: number
  windowMs: number
}

export interface WatchFigures {
  /** ms from the start of the watch to the first sample below `from`, and to the first at or below `target` (null: not within the time). */
  firstDropMs: number | null
  goneMs: number | null
  last: number
}

export interface HeapFigures {
  heapUsed: number
  external: number
  rss: number
}

export interface BroadcastReport {
  sent: number
  errors: number
  /** Worst lateness of the broadcast timer against its schedule, ms. */
  maxLagMs: number
}

let bench: BenchServer | undefined
let mark = process.cpuUsage()
let requests = 0
let requestsAtMark = 0
let redisAtMark = 0
let inspector: Session | undefined
const sockets = new Set<Socket>()
let loop: { hist: IntervalHistogram, timer: NodeJS.Timeout, worst: number, started: number } | undefined

/*
 * The wall clock as the server sees it (Date.now, which the plugin passes to its store as `now`).
 * `clock({ freeze: true })` stops it, `clock({ freeze: false })` lets it run on from where it
 * stopped: the expiry storm registers its sessions while it stands still, so that all of them were
 * last seen at the same instant however long the registration takes, and then expire together one
 * `sessionTtl` after it runs again. Timers (setTimeout, setInterval) are not affected. Installed by
 * the first `clock` call only, so that no other scenario pays for the indirection.
 */
const realNow = Date.now.bind(Date)
let frozenAt: number | null = null
let behind = 0
let clockInstalled = false

function post<T> (method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    inspector!.post(method, params, (err, result) => err === null ? resolve(result as T) : reject(err))
  })
}

async function create (kind: ServerKind, pollTimeout: number, redisUrl: string | undefined,
  options?: Record<string, unknown>, storeOptions?: Record<string, unknown>): Promise<BenchServer> {
  if (kind === 'floor') {
    const { createFloor } = await import('./floor.js')
    const floor = createFloor({ pollTimeout })
    await new Promise<void>((resolve) => floor.server.listen(0, '127.0.0.1', resolve))
    return {
      port: (floor.server.address() as { port: number }).port,
      http: floor.server,
      broadcast: floor.broadcast,
      held: floor.held,
      sessions: floor.sessions,
      close: () => new Promise<void>((resolve) => {
        floor.server.closeAllConnections()
        floor.server.close(() => resolve())
      })
    }
  }
  if (kind === 'socketio') {
    const { createSocketIoServer } = await import('./socketio-server.js')
    return await createSocketIoServer({ pollTimeout })
  }
  const { createPluginServer } = await import('./plugin-server.js')
  return await createPluginServer({ pollTimeout, redisUrl: kind === 'plugin-redis' ? redisUrl : undefined, options, storeOptions })
}

function gc (): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g === undefined) throw new Error('run with --expose-gc')
  for (let i = 0; i < 4; i++) g()
}

function memory (): MemoryFigures {
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss }
}

serve({
  /** `options` / `storeOptions`: plugin and RedisStore options a scenario adds (plugin servers only). */
  async start (args: { kind: ServerKind, pollTimeout: number, redisUrl?: string, options?: Record<string, unknown>, storeOptions?: Record<string, unknown> }) {
    bench = await create(args.kind, args.pollTimeout, args.redisUrl, args.options, args.storeOptions)
    bench.http.on('request', () => { requests++ })
    bench.http.on('connection', (socket: Socket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
    return { port: bench.port, pid: process.pid }
  },
  async held () { return await bench!.held() },
  async sessions () { return await bench!.sessions() },
  /** TCP connections open on the server right now. */
  connections () { return sockets.size },
  mark () {
    mark = process.cpuUsage()
    requestsAtMark = requests
    redisAtMark = bench?.redisCommands?.() ?? 0
    return true
  },
  usage (): Usage {
    const cpu = process.cpuUsage(mark)
    return {
      cpuMs: (cpu.user + cpu.system) / 1e3,
      userMs: cpu.user / 1e3,
      systemMs: cpu.system / 1e3,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      rssMiB: process.memoryUsage.rss() / 1048576,
      requests: requests - requestsAtMark,
      redisCommands: bench?.redisCommands === undefined ? null : bench.redisCommands() - redisAtMark
    }
  },
  /** Memory as it is (no GC first), for samples over time. */
  memory,
  /** Starts watching the event loop: monitorEventLoopDelay and a 10 ms interval timer's lateness. */
  loopStart () {
    if (loop !== undefined) clearInterval(loop.timer)
    const hist = monitorEventLoopDelay({ resolution: 10 })
    hist.enable()
    const state = { hist, timer: undefined as unknown as NodeJS.Timeout, worst: 0, started: performance.now() }
    let last = performance.now()
    state.timer = setInterval(() => {
      const now = performance.now()
      const late = now - last - 10
      if (late > state.worst) state.worst = late
      last = now
    }, 10)
    loop = state
    return true
  },
  loopStop (): LoopFigures {
    if (loop === undefined) throw new Error('loopStart first')
    const { hist, timer, worst, started } = loop
    clearInterval(timer)
    hist.disable()
    loop = undefined
    return { maxDelayMs: hist.max / 1e6, p99DelayMs: hist.percentile(99) / 1e6, timerLateMs: worst, windowMs: performance.now() - started }
  },
  /** Stops the server's wall clock (`freeze: true`) or lets it run on from where it stopped. */
  clock (args: { freeze: boolean }) {
    if (!clockInstalled) {
      Date.now = () => frozenAt ?? realNow() - behind
      clockInstalled = true
    }
    if (args.freeze && frozenAt === null) frozenAt = Date.now()
    if (!args.freeze && frozenAt !== null) {
      behind = realNow() - frozenAt
      frozenAt = null
    }
    return { now: Date.now(), behindMs: behind }
  },
  /**
   * Samples the live session count every 50 ms until it is at or below `target` or `timeoutMs`
   * passed: when it first fell below `from`, and when it reached `target`.
   */
  async watchSessions (args: { from: number, target: number, timeoutMs: number }): Promise<WatchFigures> {
    const b = bench!
    const start = performance.now()
    let firstDropMs: number | null = null
    let last = args.from
    while (performance.now() - start < args.timeoutMs) {
      last = await b.sessions()
      const t = performance.now() - start
      if (firstDropMs === null && last < args.from) firstDropMs = t
      if (last <= args.target) return { firstDropMs, goneMs: t, last }
      await sleep(50)
    }
    return { firstDropMs, goneMs: null, last }
  },
  /**
   * Broadcasts `count` messages one after the other, each awaited (`{ s, n, t, pad }`, `pad`:
   * `bytes` characters): the time each took, and how many recipients the last one had.
   */
  async broadcastEach (args: { count: number, bytes?: number, s?: number, first?: number }): Promise<{ took: LatencySummary, errors: number }> {
    const b = bench!
    const hist = new Histogram()
    const pad = 'x'.repeat(args.bytes ?? 0)
    let errors = 0
    for (let n = 0; n < args.count; n++) {
      const t0 = nowUs()
      try {
        await b.broadcast({ s: args.s ?? -1, n: (args.first ?? 0) + n, t: t0, ...(pad === '' ? {} : { pad }) })
      } catch {
        errors++
      }
      hist.record(nowUs() - t0)
    }
    return { took: hist.summary(), errors }
  },
  async heap (): Promise<HeapFigures & MemoryFigures> {
    gc()
    await sleep(50)
    gc()
    return memory()
  },
  /**
   * Broadcasts `count` messages `{ s: -1, n, t }` (`n` from `first`; `t`: send time, µs on the
   * monotonic clock) at `rate` per second, on a drift-free schedule; resolves once all are sent
   * (and accepted).
   */
  async broadcast (args: { count: number, rate: number, first?: number }): Promise<BroadcastReport> {
    const b = bench!
    const interval = 1000 / args.rate
    const start = performance.now()
    let errors = 0
    let maxLag = 0
    const pending: Promise<unknown>[] = []
    for (let n = 0; n < args.count; n++) {
      const due = start + n * interval
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      const lag = performance.now() - due
      if (lag > maxLag) maxLag = lag
      try {
        const r = b.broadcast({ s: -1, n: (args.first ?? 0) + n, t: nowUs() })
        if (r instanceof Promise) pending.push(r.catch(() => { errors++ }))
      } catch {
        errors++
      }
    }
    await Promise.all(pending)
    return { sent: args.count, errors, maxLagMs: maxLag }
  },
  /**
   * Starts the V8 CPU profiler (1 ms sampling) for the measured window, and the allocation
   * sampler (every 32 KiB allocated, collected objects included: where the GC's work comes from).
   */
  async profileStart () {
    inspector = new Session()
    inspector.connect()
    await post('Profiler.enable')
    await post('Profiler.setSamplingInterval', { interval: 1000 })
    await post('HeapProfiler.enable')
    await post('HeapProfiler.startSampling', {
      samplingInterval: 32_768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true
    })
    await post('Profiler.start')
    return true
  },
  /** Writes `file` (.cpuprofile) and the allocation profile next to it (.heapprofile). */
  async profileStop (args: { file: string }) {
    const { profile } = await post<{ profile: unknown }>('Profiler.stop')
    const heap = await post<{ profile: unknown }>('HeapProfiler.stopSampling')
    inspector!.disconnect()
    inspector = undefined
    writeFileSync(args.file, JSON.stringify(profile))
    writeFileSync(args.file.replace(/\.cpuprofile$/, '.heapprofile'), JSON.stringify(heap.profile))
    return true
  },
  async stop () {
    if (bench !== undefined) await bench.close()
    setTimeout(() => process.exit(0), 20)
    return true
  }
})
