/**
 * The server process of one benchmark run: `tsx bench/server-proc.ts` forked by bench/run.ts.
 * It starts one server (floor, socket.io, or the plugin with a store), runs the server-side
 * broadcast trigger, and reports its own cost (CPU time since a mark, peak RSS, heap after GC)
 * over IPC.
 */
import { writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { Session } from 'node:inspector'
import { serve } from './ipc.js'
import { nowUs, sleep } from './stats.js'

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
let inspector: Session | undefined

function post<T> (method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    inspector!.post(method, params, (err, result) => err === null ? resolve(result as T) : reject(err))
  })
}

async function create (kind: ServerKind, pollTimeout: number, redisUrl: string | undefined): Promise<BenchServer> {
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
  return await createPluginServer({ pollTimeout, redisUrl: kind === 'plugin-redis' ? redisUrl : undefined })
}

function gc (): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g === undefined) throw new Error('run with --expose-gc')
  for (let i = 0; i < 4; i++) g()
}

serve({
  async start (args: { kind: ServerKind, pollTimeout: number, redisUrl?: string }) {
    bench = await create(args.kind, args.pollTimeout, args.redisUrl)
    bench.http.on('request', () => { requests++ })
    return { port: bench.port, pid: process.pid }
  },
  async held () { return await bench!.held() },
  async sessions () { return await bench!.sessions() },
  mark () {
    mark = process.cpuUsage()
    requestsAtMark = requests
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
      requests: requests - requestsAtMark
    }
  },
  async heap (): Promise<HeapFigures> {
    gc()
    await sleep(50)
    gc()
    const m = process.memoryUsage()
    return { heapUsed: m.heapUsed, external: m.external, rss: m.rss }
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
