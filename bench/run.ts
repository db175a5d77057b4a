/**
 * `npm run bench`: the plugin against the floor (a bare node:http long-poll server) and socket.io
 * (polling transport), each in its own server process, loaded from a separate load process on
 * 127.0.0.1. Prints a markdown report and writes bench/results/latest.{md,json}.
 *
 * The knobs (environment variables) and their defaults are in bench/config.ts, the scenarios in
 * bench/scenarios.ts, the tables and targets in bench/report.ts; docs/performance.md explains them.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { cfg, nth, requestedScenarios, requestedServers, RESULTS } from './config.js'
import { openRedis, type BenchRedis } from './redis.js'
import { log, machine, render, targets, type StressRows } from './report.js'
import { chat, delivery, idle, useRedis, type ChatRow, type DeliveryRow, type IdleRow } from './scenarios.js'
import { redisCost, slowReaders, storm } from './scenarios-stress.js'

async function main (): Promise<void> {
  const started = Date.now()
  const loadAtStart = os.loadavg().map((v) => Number(v.toFixed(2)))
  let servers = requestedServers()
  const scenarios = requestedScenarios()
  const needsRedis = servers.includes('plugin-redis') || scenarios.includes('redis-cost')
  const redis: BenchRedis | undefined = needsRedis ? await openRedis(cfg.redisMode, log) : undefined
  if (needsRedis && redis === undefined) log('Redis is not reachable: plugin-redis and redis-cost are skipped (install redis-server, or set REDIS_URL with BENCH_REDIS=url)')
  if (redis === undefined) servers = servers.filter((s) => s !== 'plugin-redis')
  else log(`Redis: ${redis.note}`)
  useRedis(redis)
  const stop = (): void => { redis?.stop().finally(() => process.exit(130)) ?? process.exit(130) }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  mkdirSync(join(RESULTS, 'profiles'), { recursive: true })
  log(`servers: ${servers.join(', ')}; scenarios: ${scenarios.join(', ')}${cfg.quick ? ' (quick)' : ''}; pinning: ${cfg.pin.note}`)

  const fan: DeliveryRow[] = []
  const burst: DeliveryRow[] = []
  const idleRows: IdleRow[] = []
  const chatRows: ChatRow[] = []
  const stress: StressRows = { storm: [], slow: [], redisCost: [] }
  const plugins = servers.filter((s) => s === 'plugin-memory' || s === 'plugin-redis')
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
      const messages = nth(cfg.fanoutMessages, i)
      const rate = nth(cfg.fanoutRate, i)
      // Rounds interleaved: floor, socketio, plugin-memory, plugin-redis, floor, ... so that a slow
      // spell of the machine does not fall on one server's runs only.
      for (let round = 1; round <= nth(cfg.fanoutRounds, i); round++) {
        for (const s of servers) await attempt(`fanout ${s} N=${n} round ${round}`, async () => { fan.push(await delivery('fanout', s, n, messages, rate, round)) })
      }
    }
  }
  if (scenarios.includes('burst')) {
    for (const [i, rate] of cfg.burstRates.entries()) {
      const seconds = nth(cfg.burstSeconds, i)
      for (const s of servers) await attempt(`burst ${s} ${rate}/s`, async () => { burst.push(await delivery('burst', s, cfg.burstClients, rate * seconds, rate)) })
    }
  }
  if (scenarios.includes('idle')) {
    for (const s of servers) await attempt(`idle ${s}`, async () => { idleRows.push(await idle(s, s === 'socketio' ? cfg.idleNSocketIo : cfg.idleN)) })
  }
  if (scenarios.includes('chat')) {
    for (const s of servers) await attempt(`chat ${s}`, async () => { chatRows.push(await chat(s)) })
  }
  if (scenarios.includes('storm')) {
    for (const s of plugins) await attempt(`storm ${s}`, async () => { stress.storm.push(await storm(s)) })
  }
  if (scenarios.includes('slow')) {
    for (const s of plugins) await attempt(`slow ${s}`, async () => { stress.slow.push(await slowReaders(s)) })
  }
  if (scenarios.includes('redis-cost') && redis !== undefined) {
    for (const n of cfg.rcostN) await attempt(`redis-cost N=${n}`, async () => { stress.redisCost.push(await redisCost(n)) })
  }
  await redis?.stop()

  const tg = targets(fan, burst, idleRows, stress)
  const meta = {
    date: new Date().toISOString(),
    machine: machine(),
    loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map((v) => Number(v.toFixed(2))) },
    config: cfg,
    servers,
    redis: redis?.note,
    durationS: Math.round((Date.now() - started) / 1000)
  }
  let md = render(meta, fan, burst, idleRows, chatRows, stress, tg)
  md += `\nWhole run: ${meta.durationS} s.${failures.length > 0 ? ` Failed runs: ${failures.join('; ')}.` : ''}\n`
  writeFileSync(join(RESULTS, 'latest.md'), md)
  writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify({ ...meta, fanout: fan, burst, idle: idleRows, chat: chatRows, ...stress, targets: tg, failures }, null, 2) + '\n')
  console.log(md)
  log(`written: ${join(RESULTS, 'latest.md')}, latest.json`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
