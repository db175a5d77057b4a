/**
 * The benchmark's configuration: the environment knobs with their defaults (full and quick), the
 * servers it knows, and the Redis it finds. Read once, when bench/run.ts starts.
 *
 * Knobs (environment):
 *   BENCH_QUICK=1            small N and short runs (a smoke run in about a minute)
 *   BENCH_SERVERS=a,b        floor, socketio, plugin-memory, plugin-redis (default: all; Redis when reachable)
 *   BENCH_SCENARIOS=a,b      fanout, burst, idle, chat (default: all)
 *   BENCH_FANOUT_N=1000,5000 BENCH_FANOUT_MESSAGES=200,8 BENCH_FANOUT_RATE=10,1 (per N)
 *   BENCH_BURST_CLIENTS=1000 BENCH_BURST_RATES=20,100 BENCH_BURST_SECONDS=5,10 (seconds per rate)
 *   BENCH_IDLE_N=10000 BENCH_IDLE_N_SOCKETIO=2000
 *   BENCH_CHAT_ROOMS=50 BENCH_CHAT_MEMBERS=10 BENCH_CHAT_SENDERS=2 BENCH_CHAT_SECONDS=8
 *   BENCH_PIN=0|1            server process on one CPU, load process on another, with taskset (default: on
 *                            when taskset exists and this process may run on 2 or more CPUs)
 *   BENCH_PIN_CPUS=0,1       the CPUs for the server and the load process (default: the first two allowed)
 *   BENCH_PROFILE=1          CPU-profile the measured window of the plugin and floor servers into
 *                            bench/results/profiles/ (figures of a profiled run are not comparable)
 *   REDIS_URL                Redis for the plugin-redis server (default redis://127.0.0.1:6379/0 when it answers)
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { ServerKind } from './server-proc.js'

const env = process.env
const QUICK = env.BENCH_QUICK === '1'
export const list = (v: string | undefined, fallback: string[]): string[] => v === undefined || v === '' ? fallback : v.split(',').map((s) => s.trim()).filter(Boolean)
const nums = (v: string | undefined, fallback: number[]): number[] => list(v, fallback.map(String)).map(Number)
const num = (v: string | undefined, fallback: number): number => v === undefined || v === '' ? fallback : Number(v)

/** The CPUs this process may run on (its affinity mask), from /proc; all of them where /proc is not there. */
function allowedCpus (): number[] {
  try {
    const line = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
    if (line !== undefined) {
      return line.split(',').flatMap((part) => {
        const [a, b] = part.split('-').map(Number)
        return Array.from({ length: (b ?? a) - a + 1 }, (_, i) => a + i)
      })
    }
  } catch {}
  return os.cpus().map((_, i) => i)
}

export interface Pinning {
  /** CPU of the server process and of the load process; null when not pinned. */
  server: number | null
  load: number | null
  /** How the choice was made, for the report. */
  note: string
}

/**
 * BENCH_PIN: server and load process each on their own CPU (`taskset -c`), so that the load
 * generator never takes the server's core. On by default where `taskset` runs and this process may
 * use two CPUs or more; BENCH_PIN=0 turns it off, BENCH_PIN=1 asks for it (and says why when it
 * cannot). The harness (this process) and Redis stay where the OS puts them.
 */
function pinning (): Pinning {
  const wanted = env.BENCH_PIN
  const off = (note: string): Pinning => ({ server: null, load: null, note })
  if (wanted === '0') return off('off (BENCH_PIN=0)')
  const allowed = allowedCpus()
  const hasTaskset = spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0
  if (!hasTaskset) return off(`off (taskset not found${wanted === '1' ? ', although BENCH_PIN=1' : ''})`)
  const chosen = nums(env.BENCH_PIN_CPUS, allowed.slice(0, 2))
  if (chosen.length < 2 || chosen[0] === chosen[1] || !chosen.every((c) => allowed.includes(c))) {
    return off(`off (${allowed.length} CPU${allowed.length === 1 ? '' : 's'} allowed: ${allowed.join(',')}${env.BENCH_PIN_CPUS === undefined ? '' : `; BENCH_PIN_CPUS=${env.BENCH_PIN_CPUS}`})`)
  }
  return { server: chosen[0], load: chosen[1], note: `server process on CPU ${chosen[0]}, load process on CPU ${chosen[1]}, with taskset` }
}

export const cfg = {
  quick: QUICK,
  fanoutN: nums(env.BENCH_FANOUT_N, QUICK ? [200, 500] : [1000, 5000]),
  /**
   * Broadcasts and their rate, one per N (a single value applies to every N): enough deliveries for
   * a steady CPU figure. At N = 1000 and 10/s a fan-out takes a good part of the 100 ms between two
   * broadcasts (a slower server starts to batch); at N = 5000 and 1/s each fan-out ends before the next.
   */
  fanoutMessages: nums(env.BENCH_FANOUT_MESSAGES, QUICK ? [4] : [200, 8]),
  fanoutRate: nums(env.BENCH_FANOUT_RATE, QUICK ? [1] : [10, 1]),
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
  profile: env.BENCH_PROFILE === '1',
  pin: pinning()
}
export type Config = typeof cfg

/** The i-th value of a per-N (or per-rate) list: a shorter list repeats its last value. */
export const nth = (values: number[], i: number): number => values[Math.min(i, values.length - 1)]

export const WARM_MESSAGES = 10 // broadcasts before the measured window of fan-out and burst
export const WARM = 100 // sessions registered before the idle baseline, so that lazy setup is not counted per session
export const RESULTS = join(__dirname, 'results')

export const ALL_SERVERS: ServerKind[] = ['floor', 'socketio', 'plugin-memory', 'plugin-redis']
export const ALL_SCENARIOS = ['fanout', 'burst', 'idle', 'chat']

/** The servers asked for (BENCH_SERVERS), in the order given; throws on an unknown name. */
export function requestedServers (): ServerKind[] {
  const servers = list(env.BENCH_SERVERS, ALL_SERVERS) as ServerKind[]
  for (const s of servers) if (!ALL_SERVERS.includes(s)) throw new Error(`unknown server ${s}`)
  return servers
}

export function requestedScenarios (): string[] {
  return list(env.BENCH_SCENARIOS, ALL_SCENARIOS)
}

/** REDIS_URL (or the local default) if a Redis answers there within a second, else undefined. */
export async function findRedis (): Promise<string | undefined> {
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
