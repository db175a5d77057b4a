/**
 * The floor: the least a correct long-poll server must do, with no framework, for the benchmark to
 * compare the plugin against. Plain node:http, the plugin's wire shape (PROTOCOL.md) for the routes
 * the benchmark uses: POST /register, GET /poll, POST /messages (room or everyone), per-session
 * mailboxes with sequence-number cursors, acknowledgement by cursor, batching (a poll is answered
 * with everything queued after its cursor, up to 500), one held poll per session (409 for the
 * older one), a bounded mailbox whose overflow is counted in `missed`, tokens kept only as a
 * SHA-256 hash, each message serialized once. Not done here (and done by the plugin): validation
 * schemas, message and session expiry, rate limits, member lists, error shapes beyond the status.
 */
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'

const MAX_MAILBOX = 1000
const MAX_PER_POLL = 500

interface Session {
  id: string
  /** Serialized messages not yet acknowledged; `box[0]` has sequence number `first`. */
  box: string[]
  first: number
  /** Sequence number of the next message appended. */
  next: number
  /** Highest sequence number handed to a poll. */
  delivered: number
  missed: number
  rooms: Set<string>
  held: { res: http.ServerResponse, timer: NodeJS.Timeout } | null
}

export interface Floor {
  server: http.Server
  broadcast: (data: unknown) => number
  held: () => number
  sessions: () => number
}

export function createFloor (opts: { pollTimeout?: number } = {}): Floor {
  const pollTimeout = opts.pollTimeout ?? 25_000
  const byTokenHash = new Map<string, Session>()
  const byId = new Map<string, Session>()
  const rooms = new Map<string, Set<Session>>()
  let heldCount = 0
  let msgCounter = 0
  const idPrefix = randomBytes(4).toString('hex')

  const headers = (length: number): http.OutgoingHttpHeaders => ({
    'content-type': 'application/json; charset=utf-8',
    'content-length': length,
    'cache-control': 'no-store'
  })

  function send (res: http.ServerResponse, status: number, body: string): void {
    res.writeHead(status, headers(Buffer.byteLength(body)))
    res.end(body)
  }

  function fail (res: http.ServerResponse, status: number, code: string): void {
    send(res, status, `{"statusCode":${status},"code":"${code}"}`)
  }

  function sessionOf (req: http.IncomingMessage): Session | undefined {
    const auth = req.headers.authorization
    if (auth === undefined || !auth.startsWith('Bearer ')) return undefined
    return byTokenHash.get(createHash('sha256').update(auth.slice(7)).digest('hex'))
  }

  /** Answers with everything after the acknowledged cursor (up to MAX_PER_POLL). */
  function answer (s: Session, res: http.ServerResponse): void {
    const n = Math.min(s.box.length, MAX_PER_POLL)
    const last = s.first + n - 1
    if (last > s.delivered) s.delivered = last
    const cursor = n === 0 ? s.first - 1 : last
    const body = `{"cursor":"${cursor}","messages":[${n === s.box.length ? s.box.join(',') : s.box.slice(0, n).join(',')}],"missed":${s.missed}}`
    s.missed = 0
    send(res, 200, body)
  }

  function release (s: Session): void {
    if (s.held === null) return
    clearTimeout(s.held.timer)
    s.held = null
    heldCount--
  }

  function append (s: Session, json: string): void {
    s.box.push(json)
    s.next++
    if (s.box.length > MAX_MAILBOX) {
      if (s.first > s.delivered) s.missed++
      s.box.shift()
      s.first++
    }
    const held = s.held
    if (held !== null) {
      release(s)
      answer(s, held.res)
    }
  }

  function publish (data: unknown, from: string | null, room: string | null): number {
    const id = `${idPrefix}-${++msgCounter}`
    const ts = Date.now()
    const json = JSON.stringify({ id, type: 'message', from, room, to: null, data, ts })
    const targets = room === null ? byId.values() : (rooms.get(room) ?? new Set<Session>()).values()
    let n = 0
    for (const s of targets) {
      append(s, json)
      n++
    }
    return n
  }

  function register (req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    let wanted: string[] = []
    if (body.length > 0) {
      try {
        const parsed = JSON.parse(body) as { rooms?: unknown }
        if (Array.isArray(parsed.rooms)) wanted = parsed.rooms.filter((r): r is string => typeof r === 'string')
      } catch {
        fail(res, 400, 'FST_ERR_CTP_INVALID_JSON_BODY')
        return
      }
    }
    const token = randomBytes(24).toString('base64url')
    const s: Session = { id: randomBytes(12).toString('base64url'), box: [], first: 1, next: 1, delivered: 0, missed: 0, rooms: new Set(), held: null }
    byTokenHash.set(createHash('sha256').update(token).digest('hex'), s)
    byId.set(s.id, s)
    for (const r of wanted) {
      s.rooms.add(r)
      let members = rooms.get(r)
      if (members === undefined) rooms.set(r, (members = new Set()))
      members.add(s)
    }
    send(res, 201, JSON.stringify({ id: s.id, token, cursor: '0', pollTimeoutMs: pollTimeout, messageTtlMs: 60_000, sessionTtlMs: 300_000 }))
  }

  function poll (req: http.IncomingMessage, res: http.ServerResponse, query: string): void {
    const s = sessionOf(req)
    if (s === undefined) { fail(res, 401, 'LONGPOLL_UNKNOWN_SESSION'); return }
    const m = /(?:^|&)cursor=(\d+)(?:&|$)/.exec(query)
    const cursor = m === null ? s.delivered : Number(m[1])
    if (cursor > s.delivered) { fail(res, 400, 'LONGPOLL_BAD_CURSOR'); return }
    // Acknowledge everything up to the cursor.
    const acked = cursor - s.first + 1
    if (acked > 0) {
      s.box.splice(0, acked)
      s.first += acked
    }
    if (s.held !== null) {
      const older = s.held.res
      release(s)
      fail(older, 409, 'LONGPOLL_POLL_SUPERSEDED')
    }
    if (s.box.length > 0 || s.missed > 0) { answer(s, res); return }
    const timer = setTimeout(() => {
      release(s)
      answer(s, res)
    }, pollTimeout)
    s.held = { res, timer }
    heldCount++
    res.on('close', () => { if (s.held?.res === res) release(s) })
  }

  function message (req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const s = sessionOf(req)
    if (s === undefined) { fail(res, 401, 'LONGPOLL_UNKNOWN_SESSION'); return }
    let parsed: { data?: unknown, room?: unknown }
    try {
      parsed = JSON.parse(body) as { data?: unknown, room?: unknown }
    } catch {
      fail(res, 400, 'FST_ERR_CTP_INVALID_JSON_BODY')
      return
    }
    const room = typeof parsed.room === 'string' ? parsed.room : null
    if (room !== null && !s.rooms.has(room)) { fail(res, 403, 'LONGPOLL_NOT_A_MEMBER'); return }
    const id = `${idPrefix}-${msgCounter + 1}`
    publish(parsed.data ?? null, s.id, room)
    send(res, 202, `{"id":"${id}","ts":${Date.now()}}`)
  }

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const query = q === -1 ? '' : url.slice(q + 1)
    if (req.method === 'GET' && path === '/chat/poll') {
      req.resume()
      poll(req, res, query)
      return
    }
    if (req.method === 'POST' && (path === '/chat/register' || path === '/chat/messages')) {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => { body += chunk })
      req.on('end', () => {
        if (path === '/chat/register') register(req, res, body)
        else message(req, res, body)
      })
      return
    }
    req.resume()
    fail(res, 404, 'FST_ERR_NOT_FOUND')
  })
  // Same idle keep-alive as Fastify's default, so neither side reconnects more often.
  server.keepAliveTimeout = 72_000

  return {
    server,
    broadcast: (data) => publish(data, null, null),
    held: () => heldCount,
    sessions: () => byId.size
  }
}
