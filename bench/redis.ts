/**
 * The Redis of the plugin-redis runs, and what the benchmark reads from it.
 *
 * By default the run starts a private `redis-server` of its own on a free port of 127.0.0.1 (no
 * persistence, nothing else connected), so that `INFO cpu` and `INFO commandstats` count this
 * benchmark's work alone, and stops it at the end. `BENCH_REDIS=url` uses REDIS_URL (or
 * redis://127.0.0.1:6379/0) instead, as does a machine without `redis-server`: there, other users of
 * that Redis are counted too, and nothing is reconfigured (no latency monitor).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { sleep } from './stats.js'

export interface BenchRedis {
  url: string
  /** Whether it is a redis-server started for this run (its figures are the benchmark's alone). */
  own: boolean
  /** For the report: which Redis, and why. */
  note: string
  /** A client for INFO and the like (not the store's). */
  info: Redis
  stop: () => Promise<void>
}

/** What the run knows of `redis-server` on this machine. */
export function hasRedisServer (): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

async function ping (url: string, timeoutMs: number): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await probe.ping()
    return true
  } catch {
    return false
  } finally {
    probe.disconnect()
  }
}

/** Starts a private redis-server (a child of this process, ended by its pid in `stop`). */
async function startPrivate (): Promise<{ url: string, child: ChildProcess } | string> {
  const port = await freePort()
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no',
    // Commands and events slower than this are kept by LATENCY (the longest one is reported).
    '--latency-monitor-threshold', '10'
  ], { stdio: 'ignore' })
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(`redis-server exited (${code ?? signal})`))
    child.once('error', (err) => resolve(`redis-server did not start: ${err.message}`))
  })
  const url = `redis://127.0.0.1:${port}/0`
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const r = await Promise.race([ping(url, 500), exited])
    if (r === true) return { url, child }
    if (typeof r === 'string') return r
    await sleep(100)
  }
  child.kill('SIGKILL')
  return 'redis-server did not answer within 10 s'
}

/**
 * The Redis for this run: private (default when redis-server exists; BENCH_REDIS=private) or the
 * one at REDIS_URL (BENCH_REDIS=url, or when no private one can start). Undefined when none answers.
 */
export async function openRedis (mode: 'private' | 'url', log: (...args: unknown[]) => void): Promise<BenchRedis | undefined> {
  let fallback = ''
  if (mode === 'private') {
    const started = hasRedisServer() ? await startPrivate() : 'redis-server not found'
    if (typeof started !== 'string') {
      const { url, child } = started
      const kill = (): void => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
      process.once('exit', kill)
      const info = new Redis(url, { maxRetriesPerRequest: 1 })
      return {
        url,
        own: true,
        note: `private redis-server ${await serverVersion(info)} on ${url.replace('redis://', '').replace(/\/0$/, '')} (started for this run, no persistence)`,
        info,
        async stop () {
          info.disconnect()
          if (child.exitCode !== null || child.signalCode !== null) return
          const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
          child.kill('SIGTERM')
          const timer = setTimeout(kill, 5000)
          await gone
          clearTimeout(timer)
          process.removeListener('exit', kill)
        }
      }
    }
    fallback = ` (${started}: fell back to REDIS_URL)`
    log(`private Redis: ${started}; trying REDIS_URL`)
  }
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0'
  if (!(await ping(url, 1000))) return undefined
  const info = new Redis(url, { maxRetriesPerRequest: 1 })
  return {
    url,
    own: false,
    note: `shared Redis ${await serverVersion(info)} at ${url}${fallback}: its CPU and command counts include other clients' work`,
    info,
    async stop () { info.disconnect() }
  }
}

async function serverVersion (info: Redis): Promise<string> {
  const text = await info.info('server')
  return /^redis_version:(\S+)/m.exec(text)?.[1] ?? '?'
}

/* Figures ------------------------------------------------------------------------------------------ */

export interface RedisSnapshot {
  /** used_cpu_user + used_cpu_sys, ms (every thread of the Redis process). */
  cpuMs: number
  /** INFO commandstats: calls and µs per command name (commands run by scripts are counted under their own names too). */
  commands: Record<string, { calls: number, usec: number }>
  usedMemory: number
}

export interface RedisDelta {
  cpuMs: number
  /** EVALSHA + EVAL (+ FCALL) calls and their µs: the store's scripts. */
  scriptCalls: number
  scriptUsec: number
  usedMemory: number
  commands: Record<string, { calls: number, usec: number }>
}

const SCRIPT_COMMANDS = ['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'fcall_ro']

export async function redisSnapshot (info: Redis): Promise<RedisSnapshot> {
  const text = await info.info('all')
  const num = (k: string): number => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0)
  const commands: RedisSnapshot['commands'] = {}
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    commands[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) }
  }
  return { cpuMs: (num('used_cpu_user') + num('used_cpu_sys')) * 1000, commands, usedMemory: num('used_memory') }
}

export function redisDelta (a: RedisSnapshot, b: RedisSnapshot): RedisDelta {
  const commands: RedisDelta['commands'] = {}
  for (const [name, v] of Object.entries(b.commands)) {
    const before = a.commands[name] ?? { calls: 0, usec: 0 }
    const calls = v.calls - before.calls
    // INFO itself is the harness reading the figures, not the store.
    if (calls > 0 && name !== 'info') commands[name] = { calls, usec: v.usec - before.usec }
  }
  let scriptCalls = 0
  let scriptUsec = 0
  for (const name of SCRIPT_COMMANDS) {
    scriptCalls += commands[name]?.calls ?? 0
    scriptUsec += commands[name]?.usec ?? 0
  }
  return { cpuMs: b.cpuMs - a.cpuMs, scriptCalls, scriptUsec, usedMemory: b.usedMemory - a.usedMemory, commands }
}

/** Longest command (or event) Redis saw since the last reset, ms (LATENCY LATEST; private Redis only). */
export async function redisLongestMs (r: BenchRedis): Promise<number | null> {
  if (!r.own) return null
  const rows = await r.info.call('latency', 'latest') as Array<[string, number, number, number]>
  let max = 0
  for (const row of rows) if (Number(row[3]) > max) max = Number(row[3])
  return max
}

export async function redisLatencyReset (r: BenchRedis): Promise<void> {
  if (r.own) await r.info.call('latency', 'reset')
}
