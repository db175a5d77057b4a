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
import { Redis } from 'ioredis'
import { cfg, findRedis, nth, requestedScenarios, requestedServers, RESULTS } from './config.js'
import { log, machine, render, targets } from './report.js'
import { chat, delivery, idle, useRedis, type ChatRow, type DeliveryRow, type IdleRow } from './scenarios.js'

async function main (): Promise<void> {
  const started = Date.now()
  const loadAtStart = os.loadavg().map((v) => Number(v.toFixed(2)))
  const redisUrl = await findRedis()
  let redisInfo: Redis | undefined
  let servers = requestedServers()
  if (redisUrl === undefined) {
    if (servers.includes('plugin-redis')) log('Redis is not reachable: plugin-redis is skipped (set REDIS_URL)')
    servers = servers.filter((s) => s !== 'plugin-redis')
  } else if (servers.includes('plugin-redis')) {
    redisInfo = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  }
  useRedis(redisUrl, redisInfo)
  const scenarios = requestedScenarios()
  mkdirSync(join(RESULTS, 'profiles'), { recursive: true })
  log(`servers: ${servers.join(', ')}; scenarios: ${scenarios.join(', ')}${cfg.quick ? ' (quick)' : ''}; pinning: ${cfg.pin.note}`)

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
      const messages = nth(cfg.fanoutMessages, i)
      const rate = nth(cfg.fanoutRate, i)
      for (const s of servers) await attempt(`fanout ${s} N=${n}`, async () => { fan.push(await delivery('fanout', s, n, messages, rate)) })
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
