/**
 * The load generator: `tsx bench/load.ts`, forked by bench/run.ts, a separate process from the
 * server. Long-poll clients for the floor and the plugin (node:http, keep-alive agents), or
 * socket.io-client restricted to polling (same agent). Every loop here stops when the scenario
 * stops; the harness bounds each scenario in time.
 */
import http from 'node:http'
import net from 'node:net'
import { io as ioClient, type Socket } from 'socket.io-client'
import { serve } from './ipc.js'
import { Histogram, nowUs, sleep, type LatencySummary } from './stats.js'

type Kind = 'lp' | 'socketio'

/**
 * A benchmark message: sender `s`, number `n`, send time `t`. Clients (s >= 0) send one at a time,
 * so their messages arrive in order; the server's broadcasts and the publisher (s < 0) may have
 * several in flight, which the server may accept in any order.
 */
interface Tracked { s: number, n: number, t: number }

interface Client {
  idx: number
  rooms: string[]
  /** Last `n` seen from each client sender (s >= 0): its order is preserved, so lower or equal is a duplicate. */
  last: Map<number, number>
  /** Every `n` seen from each sender s < 0, whose messages may be accepted out of order. */
  seen: Map<number, Set<number>>
  /** Distinct messages received from each sender. */
  got: Map<number, number>
  token?: string
  cursor?: string
  socket?: Socket
  polling?: boolean
}

export interface LoadReport {
  delivered: number
  expected: number
  duplicates: number
  missed: number
  /** join / leave notices received, and when the last leave arrived (µs, monotonic clock; 0: none). */
  joins: number
  leaves: number
  lastLeaveUs: number
  /** Poll responses that carried at least one benchmark message, and those messages. */
  responsesWithMessages: number
  messagesInThem: number
  emptyResponses: number
  errors: Record<string, number>
  latency: LatencySummary
  /** From the reset to the last delivery, ms. */
  spanMs: number
  /** The load process's own CPU time and the wall time since the reset, ms. */
  loadCpuMs: number
  wallMs: number
  timedOut: boolean
}

let kind: Kind = 'lp'
let port = 0
const clients: Client[] = []
let running = false
const hist = new Histogram()
let counters = freshCounters()
let lastDeliveryAt = 0
let resetAt = 0

let cpuMark = process.cpuUsage()

function freshCounters (): Omit<LoadReport, 'expected' | 'latency' | 'spanMs' | 'loadCpuMs' | 'wallMs' | 'timedOut'> {
  return { delivered: 0, duplicates: 0, missed: 0, joins: 0, leaves: 0, lastLeaveUs: 0, responsesWithMessages: 0, messagesInThem: 0, emptyResponses: 0, errors: {} }
}

function countError (what: string): void {
  counters.errors[what] = (counters.errors[what] ?? 0) + 1
}

const agentOpts: http.AgentOptions = { keepAlive: true, maxSockets: Infinity, maxFreeSockets: 20_000, timeout: 120_000 }
const pollAgent = new http.Agent(agentOpts)
let postAgent = new http.Agent({ ...agentOpts, maxSockets: 256 })
// The publisher's connections: a send that is due goes out whether or not the ones before it
// were answered (the offered rate does not bend to the server's speed), on up to 16 connections.
const pubAgent = new http.Agent({ ...agentOpts, maxSockets: 16 })
// A socket.io publisher needs two: its held poll, and the POSTs that carry its packets (socket.io sends them one at a time, in order).
const sioPubAgent = new http.Agent({ ...agentOpts, maxSockets: 2 })

/** Records one received benchmark message; returns whether it was one. */
function onData (c: Client, data: unknown, at: number): boolean {
  if (data === null || typeof data !== 'object') return false
  const d = data as Tracked
  if (typeof d.t !== 'number' || typeof d.n !== 'number' || typeof d.s !== 'number') return false
  if (d.s < 0) {
    let seen = c.seen.get(d.s)
    if (seen === undefined) c.seen.set(d.s, (seen = new Set()))
    if (seen.has(d.n)) {
      counters.duplicates++
      return true
    }
    seen.add(d.n)
  } else {
    const prev = c.last.get(d.s)
    if (prev !== undefined && d.n <= prev) {
      counters.duplicates++
      return true
    }
    c.last.set(d.s, d.n)
  }
  c.got.set(d.s, (c.got.get(d.s) ?? 0) + 1)
  counters.delivered++
  hist.record(at - d.t)
  lastDeliveryAt = at
  return true
}

function request (agent: http.Agent, method: string, path: string, token: string | undefined, body: string | undefined,
  done: (status: number, text: string) => void, fail: (err: Error) => void): http.ClientRequest {
  const headers: http.OutgoingHttpHeaders = {}
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = Buffer.byteLength(body)
  }
  const req = http.request({ agent, host: '127.0.0.1', port, method, path, headers }, (res) => {
    let text = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => { text += chunk })
    res.on('end', () => done(res.statusCode ?? 0, text))
    res.on('error', fail)
  })
  req.on('error', fail)
  req.end(body)
  return req
}

function requestAsync (agent: http.Agent, method: string, path: string, token: string | undefined, body: string | undefined): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    request(agent, method, path, token, body, (status, text) => resolve({ status, text }), reject)
  })
}

/* Long-poll clients (floor and plugin: the same wire protocol) ---------------------------------- */

function lpPoll (c: Client): void {
  if (!running || c.polling !== true) return
  const path = `/chat/poll?cursor=${encodeURIComponent(c.cursor ?? '0')}`
  request(pollAgent, 'GET', path, c.token, undefined, (status, text) => {
    const at = nowUs()
    if (status !== 200) {
      countError(`poll ${status}`)
      setTimeout(() => lpPoll(c), 100)
      return
    }
    let parsed: { cursor: string, messages: { type: string, data: unknown }[], missed: number }
    try {
      parsed = JSON.parse(text)
    } catch {
      countError('poll bad json')
      setTimeout(() => lpPoll(c), 100)
      return
    }
    c.cursor = parsed.cursor
    counters.missed += parsed.missed
    let n = 0
    for (const m of parsed.messages) {
      if (m.type === 'message') {
        if (onData(c, m.data, at)) n++
      } else if (m.type === 'leave') {
        counters.leaves++
        counters.lastLeaveUs = at
      } else if (m.type === 'join') {
        counters.joins++
      }
    }
    if (n > 0) {
      counters.responsesWithMessages++
      counters.messagesInThem += n
    } else if (parsed.messages.length === 0) {
      counters.emptyResponses++
    }
    lpPoll(c)
  }, (err) => {
    if (!running) return
    countError(`poll ${(err as NodeJS.ErrnoException).code ?? err.message}`)
    setTimeout(() => lpPoll(c), 100)
  })
}

async function lpRegister (c: Client, agent = postAgent): Promise<void> {
  const body = c.rooms.length > 0 ? JSON.stringify({ rooms: c.rooms }) : undefined
  const { status, text } = await requestAsync(agent, 'POST', '/chat/register', undefined, body)
  if (status !== 201) throw new Error(`register ${status} ${text.slice(0, 200)}`)
  const r = JSON.parse(text) as { token: string, cursor: string }
  c.token = r.token
  c.cursor = r.cursor
}

/* The publisher: a session (or socket) of its own that sends, on connections of its own ----------- */

let publisher: Client | undefined

async function sioPublisher (): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = ioClient(`http://127.0.0.1:${port}`, {
      transports: ['polling'], agent: sioPubAgent as unknown as string, forceNew: true, reconnection: false, timeout: 60_000
    })
    socket.on('connect', () => resolve(socket))
    socket.on('connect_error', reject)
  })
}

/** Sends one `data` from `c` (to `room`, or to everyone): resolves with whether it was accepted. */
async function send (c: Client, data: Tracked, room: string | undefined): Promise<boolean> {
  if (kind === 'lp') {
    const body = JSON.stringify(room === undefined ? { data } : { data, room })
    const r = await requestAsync(c === publisher ? pubAgent : postAgent, 'POST', '/chat/messages', c.token, body)
      .catch((err: Error) => ({ status: 0, text: err.message }))
    if (r.status !== 202) countError(`send ${r.status}`)
    return r.status === 202
  }
  const ok = await new Promise<boolean>((resolve) => {
    c.socket!.timeout(10_000).emit('send', room ?? null, data, (err: Error | null) => resolve(err === null))
  })
  if (!ok) countError('send timeout')
  return ok
}

/* Slow readers: polls whose responses are never read ------------------------------------------------ */

const slowSockets: net.Socket[] = []

/* socket.io clients (polling transport only) ---------------------------------------------------- */

function sioConnect (c: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = ioClient(`http://127.0.0.1:${port}`, {
      transports: ['polling'],
      agent: pollAgent as unknown as string,
      forceNew: true,
      reconnection: false,
      timeout: 60_000,
      query: c.rooms.length > 0 ? { rooms: c.rooms.join(',') } : {}
    })
    c.socket = socket
    let inPoll = 0
    socket.io.on('open', () => {
      const engine = socket.io.engine
      engine.on('packet', (p: { type: string }) => { if (p.type === 'message') inPoll++ })
      engine.transport.on('pollComplete', () => {
        if (inPoll > 0) counters.responsesWithMessages++
        else counters.emptyResponses++
        inPoll = 0
      })
    })
    socket.on('m', (data: unknown) => {
      const at = nowUs()
      if (onData(c, data, at)) counters.messagesInThem++
    })
    socket.on('connect', () => resolve())
    socket.on('connect_error', (err) => { countError(`connect ${err.message}`); reject(err) })
    socket.on('disconnect', (reason) => { if (running) countError(`disconnect ${reason}`) })
  })
}

/* Commands --------------------------------------------------------------------------------------- */

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<number> {
  let next = 0
  let failures = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]
      try {
        await fn(item)
      } catch (err) {
        failures++
        if (failures <= 3) console.error('[load]', (err as Error).message)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return failures
}

function snapshot (expected: number, timedOut: boolean): LoadReport {
  const cpu = process.cpuUsage(cpuMark)
  return {
    loadCpuMs: (cpu.user + cpu.system) / 1e3,
    wallMs: (nowUs() - resetAt) / 1e3,
    ...counters,
    errors: { ...counters.errors },
    expected,
    latency: hist.summary(),
    spanMs: lastDeliveryAt > resetAt ? (lastDeliveryAt - resetAt) / 1e3 : 0,
    timedOut
  }
}

serve({
  /**
   * Adds `rooms.length` clients (each with its rooms) and registers (or connects) them; polls
   * start with `poll` (socket.io clients poll from the moment they connect).
   */
  async setup (args: { kind: Kind, port: number, rooms: string[][], concurrency: number }) {
    kind = args.kind
    port = args.port
    running = true
    const started = performance.now()
    const fresh: Client[] = []
    for (const rooms of args.rooms) fresh.push({ idx: clients.length + fresh.length, rooms, last: new Map(), seen: new Map(), got: new Map() })
    clients.push(...fresh)
    const failures = await pool(fresh, args.concurrency, kind === 'lp' ? lpRegister : sioConnect)
    return { clients: clients.length, failures, ms: performance.now() - started }
  },
  /**
   * Registers `count` sessions (in `rooms`) that this process forgets at once: sessions that exist
   * on the server and never make another request. Gives up when `budgetMs` is spent, or as soon as
   * the rate of the last 500 registrations says the rest cannot be done within it (a registration
   * that gets dearer as the room grows is found out early); closes its connections after.
   */
  async register (args: { port: number, count: number, rooms: string[], concurrency: number, budgetMs: number }) {
    port = args.port
    const agent = new http.Agent({ ...agentOpts, maxSockets: args.concurrency })
    const started = performance.now()
    const deadline = started + args.budgetMs
    let registered = 0
    let failures = 0
    let next = 0
    let stop = false
    let chunkStart = started
    const worker = async (): Promise<void> => {
      while (!stop && next < args.count && performance.now() < deadline) {
        next++
        try {
          await lpRegister({ idx: -1, rooms: args.rooms, last: new Map(), seen: new Map(), got: new Map() }, agent)
          registered++
        } catch (err) {
          if (++failures <= 3) console.error('[load]', (err as Error).message)
        }
        if ((registered + failures) % 500 === 0) {
          const now = performance.now()
          const perSession = (now - chunkStart) / 500
          chunkStart = now
          if (now + (args.count - registered - failures) * perSession > deadline) stop = true
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(args.concurrency, args.count) }, worker))
    agent.destroy()
    const ms = performance.now() - started
    return { registered, failures, ms, overBudget: registered + failures < args.count }
  },
  /** Registers (or connects) the publisher: a session of its own, not one of the clients, on connections of its own. */
  async publisher () {
    publisher = { idx: -1, rooms: [], last: new Map(), seen: new Map(), got: new Map() }
    if (kind === 'lp') await lpRegister(publisher, pubAgent)
    else publisher.socket = await sioPublisher()
    return true
  },
  /**
   * Sends `count` messages `{ s, n, t }` (`n` from `first`, `t`: send time on the monotonic clock)
   * at `rate` per second on a drift-free schedule, to `room` or to everyone, from the publisher or
   * from client `from`. Open loop: each goes out when it is due, answered or not the ones before it
   * (the publisher's agent keeps up to 16 connections; a send that waits for one shows as lag in
   * its latency, which counts from `t`). `s` must be negative (messages may be accepted out of order).
   */
  async publish (args: { count: number, rate: number, first?: number, s: number, room?: string, from?: number }) {
    const c = args.from === undefined ? publisher : clients[args.from]
    if (c === undefined) throw new Error('no publisher: call publisher first')
    if (args.s >= 0) throw new Error('publish: s must be negative')
    const interval = 1000 / args.rate
    const start = performance.now()
    const post = new Histogram()
    let accepted = 0
    let maxLag = 0
    const pending: Promise<void>[] = []
    for (let n = 0; n < args.count; n++) {
      const due = start + n * interval
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      const lag = performance.now() - due
      if (lag > maxLag) maxLag = lag
      const t = nowUs()
      pending.push(send(c, { s: args.s, n: (args.first ?? 0) + n, t }, args.room).then((ok) => {
        if (!ok) return
        accepted++
        post.record(nowUs() - t)
      }))
    }
    await Promise.all(pending)
    return { sent: args.count, accepted, maxLagMs: maxLag, post: post.summary() }
  },
  /** How many clients received `count` distinct messages from sender `s` (and the fewest any received). */
  complete (args: { s: number, count: number }) {
    let complete = 0
    let fewest = Infinity
    for (const c of clients) {
      const got = c.got.get(args.s) ?? 0
      if (got >= args.count) complete++
      if (got < fewest) fewest = got
    }
    return { complete, clients: clients.length, fewest: clients.length === 0 ? 0 : fewest }
  },
  /**
   * Slow readers: for each client, `polls` connections that each send one poll and never read a
   * byte of the answer (paused at once: the kernel's receive buffer fills, then the server's send
   * buffer, then whatever the server keeps in memory).
   */
  async slowPolls (args: { polls: number }) {
    let opened = 0
    for (const c of clients) {
      for (let i = 0; i < args.polls; i++) {
        const socket = net.connect({ host: '127.0.0.1', port })
        socket.pause()
        socket.on('error', () => {})
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve)
          socket.once('error', reject)
        })
        socket.write(`GET /chat/poll?cursor=${c.cursor ?? '0'} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nauthorization: Bearer ${c.token ?? ''}\r\n\r\n`)
        slowSockets.push(socket)
        opened++
      }
    }
    return { opened }
  },
  /** Starts every long-poll client's poll loop (socket.io clients poll from the moment they connect). */
  poll () {
    if (kind === 'lp') {
      for (const c of clients) {
        if (c.token === undefined || c.polling === true) continue
        c.polling = true
        lpPoll(c)
      }
    }
    return true
  },
  /** Closes the idle keep-alive sockets left by registration, so that only sessions (and polls) remain on the server. */
  async closeIdle () {
    postAgent.destroy()
    postAgent = new http.Agent({ ...agentOpts, maxSockets: 256 })
    await sleep(200)
    return true
  },
  reset () {
    counters = freshCounters()
    hist.reset()
    resetAt = nowUs()
    cpuMark = process.cpuUsage()
    lastDeliveryAt = 0
    return true
  },
  /** Waits until `expected` distinct benchmark messages have arrived, or `timeoutMs`. */
  async waitFor (args: { expected: number, timeoutMs: number }): Promise<LoadReport> {
    const deadline = performance.now() + args.timeoutMs
    while (counters.delivered < args.expected && performance.now() < deadline) await sleep(20)
    return snapshot(args.expected, counters.delivered < args.expected)
  },
  /**
   * Chat: each sender (client index) posts `{ s, n, t }` to its room in a closed loop (one message
   * in flight) for `durationMs`. Returns the accepted sends and how many deliveries they imply.
   */
  async chat (args: { senders: number[], durationMs: number }) {
    const deadline = performance.now() + args.durationMs
    const roomSize = new Map<string, number>()
    for (const c of clients) for (const r of c.rooms) roomSize.set(r, (roomSize.get(r) ?? 0) + 1)
    let sent = 0
    let expected = 0
    let sendErrors = 0
    const sendLatency = new Histogram()
    const loop = async (c: Client): Promise<void> => {
      const room = c.rooms[0]
      for (let n = 0; performance.now() < deadline; n++) {
        const t = nowUs()
        const data = { s: c.idx, n, t }
        const ok = await send(c, data, room)
        if (ok) {
          sent++
          expected += roomSize.get(room) ?? 0
          sendLatency.record(nowUs() - t)
        } else {
          sendErrors++
          await sleep(50)
        }
      }
    }
    await Promise.all(args.senders.map((i) => loop(clients[i])))
    return { sent, expected, sendErrors, send: sendLatency.summary() }
  },
  counters () { return snapshot(0, false) },
  /** Exits at once: the server process is stopped right after, so closing each connection politely would only cost time. */
  stop () {
    running = false
    for (const socket of slowSockets) socket.destroy()
    setTimeout(() => process.exit(0), 20)
    return true
  }
})
