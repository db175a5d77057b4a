/**
 * Talking to a test server (test/helpers/server.ts) over real HTTP (node:http, one connection per
 * request, so held polls, aborts and `app.close()` behave as they do for real clients) or through
 * `inject` when the instance is not listening; shortcuts for each route, and the assertion of an
 * error answer.
 *
 * Paths given to `request()` are relative to the plugin's prefix unless `absolute` is set.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { ERROR_CODES } from '../../lib/wire.js'
import type { Message } from '../../types/index.js'
import type { TestLike, TestServer } from './server.js'

export interface RequestOptions {
  method?: string
  /** Relative to the prefix (`/poll?wait=0`), unless `absolute`. */
  path: string
  absolute?: boolean
  /** Sent as `authorization: Bearer <token>`. */
  token?: string
  /** Serialized with JSON.stringify and sent as `application/json`. */
  json?: unknown
  /** A raw body, sent as is (set `content-type` yourself in `headers`). */
  body?: string | Buffer
  headers?: Record<string, string>
  signal?: AbortSignal
}

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  /** Parsed JSON body, or null when the body is empty or not JSON. */
  body: any
  text: string
  /** Milliseconds from sending the request to the end of the response. */
  ms: number
}

function buildRequest (prefix: string, req: RequestOptions): { method: string, url: string, headers: Record<string, string>, body: string | Buffer | undefined } {
  const headers: Record<string, string> = {}
  let body: string | Buffer | undefined
  if (req.token !== undefined) headers.authorization = `Bearer ${req.token}`
  if (req.json !== undefined) {
    body = JSON.stringify(req.json)
    headers['content-type'] = 'application/json'
  } else if (req.body !== undefined) {
    body = req.body
  }
  Object.assign(headers, req.headers)
  return { method: req.method ?? 'GET', url: (req.absolute === true ? '' : prefix) + req.path, headers, body }
}

function parse (text: string): any {
  if (text === '') return null
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}

/** One request through `app.inject` (the instance need not listen). */
export async function injectRequest (app: FastifyInstance, prefix: string, req: RequestOptions): Promise<Reply> {
  const { method, url, headers, body } = buildRequest(prefix, req)
  const started = Date.now()
  const res = await app.inject({ method: method as 'GET', url, headers, payload: body })
  return { status: res.statusCode, headers: res.headers as IncomingHttpHeaders, text: res.body, body: parse(res.body), ms: Date.now() - started }
}

/** One real HTTP request on its own connection (no keep-alive), to 127.0.0.1:port. */
export function httpCall (port: number, prefix: string, req: RequestOptions): Promise<Reply> {
  const { method, url, headers, body } = buildRequest(prefix, req)
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body))
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port, method, path: url, headers, agent: false, signal: req.signal }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parse(text), ms: Date.now() - started })
      })
    })
    r.on('error', reject)
    r.end(body)
  })
}

/* Protocol shortcuts ------------------------------------------------------------------------ */

export interface Session {
  id: string
  token: string
  cursor: string
  pollTimeoutMs: number
  messageTtlMs: number
  sessionTtlMs: number
}

/** `POST /register`; throws unless the answer is 201. */
export async function register (s: TestServer, body?: { rooms?: string[], profile?: Record<string, unknown> | null }, headers?: Record<string, string>): Promise<Session> {
  const res = await s.request({ method: 'POST', path: '/register', json: body, headers })
  if (res.status !== 201) throw new Error(`register: expected 201, got ${res.status} ${res.text}`)
  return res.body as Session
}

export interface PollOptions {
  cursor?: string
  wait?: number | string
  signal?: AbortSignal
}

/** `GET /poll` as it is answered (any status). */
export function poll (s: TestServer, token: string, opts: PollOptions = {}): Promise<Reply> {
  const q = new URLSearchParams()
  if (opts.cursor !== undefined) q.set('cursor', opts.cursor)
  if (opts.wait !== undefined) q.set('wait', String(opts.wait))
  const qs = q.toString()
  return s.request({ path: '/poll' + (qs === '' ? '' : '?' + qs), token, signal: opts.signal })
}

export interface PollResult {
  cursor: string
  messages: Message[]
  missed: number
}

/** `GET /poll`; throws unless the answer is 200. */
export async function pollOk (s: TestServer, token: string, opts: PollOptions = {}): Promise<PollResult> {
  const res = await poll(s, token, opts)
  if (res.status !== 200) throw new Error(`poll: expected 200, got ${res.status} ${res.text}`)
  return res.body as PollResult
}

/**
 * A reader of one session's mailbox: each call polls with `wait=0` from the cursor of the
 * previous call (acknowledging what it returned) and resolves with the new messages.
 */
export function reader (s: TestServer, session: { token: string, cursor: string }): () => Promise<Message[]> {
  let cursor = session.cursor
  return async () => {
    const p = await pollOk(s, session.token, { cursor, wait: 0 })
    cursor = p.cursor
    return p.messages
  }
}

/** `POST /messages` as it is answered. */
export function send (s: TestServer, token: string, body: unknown): Promise<Reply> {
  return s.request({ method: 'POST', path: '/messages', token, json: body })
}

export function join (s: TestServer, token: string, room: string): Promise<Reply> {
  return s.request({ method: 'POST', path: `/rooms/${encodeURIComponent(room)}/join`, token })
}

export function leave (s: TestServer, token: string, room: string): Promise<Reply> {
  return s.request({ method: 'POST', path: `/rooms/${encodeURIComponent(room)}/leave`, token })
}

export function members (s: TestServer, token: string, room: string): Promise<Reply> {
  return s.request({ path: `/rooms/${encodeURIComponent(room)}/members`, token })
}

export function endSession (s: TestServer, token: string): Promise<Reply> {
  return s.request({ method: 'DELETE', path: '/session', token })
}

/* Assertions ---------------------------------------------------------------------------------- */

/** The part of a tap `Test` the assertion helpers need. */
export interface Asserts extends TestLike {
  equal (found: any, wanted: any, message: string): boolean
  ok (found: any, message: string): boolean
  match (found: any, pattern: any, message: string): boolean
}

/** Every error code PROTOCOL.md names (the code list of lib/wire.ts). */
export const PROTOCOL_CODES: string[] = Object.keys(ERROR_CODES)

/** True when `code` is a protocol code or one of Fastify's own `FST_ERR_*` codes. */
export function isProtocolCode (code: unknown): boolean {
  return typeof code === 'string' && (PROTOCOL_CODES.includes(code) || code.startsWith('FST_ERR_'))
}

/**
 * Asserts an error answer: its status, `cache-control: no-store`, Fastify's error shape
 * `{ statusCode, code, error, message }`, and its code (the given one, or any protocol or
 * `FST_ERR_*` code when `code` is omitted).
 */
export function assertError (t: Asserts, res: Reply, status: number, code?: string, what = ''): void {
  const p = what === '' ? '' : what + ': '
  t.equal(res.status, status, `${p}status ${status} (body ${res.text.slice(0, 200)})`)
  t.match(res.headers['cache-control'], /no-store/, `${p}cache-control: no-store`)
  const b = res.body
  t.ok(b !== null && typeof b === 'object', `${p}JSON error body`)
  if (b === null || typeof b !== 'object') return
  t.equal(b.statusCode, status, `${p}body.statusCode`)
  t.equal(typeof b.error, 'string', `${p}body.error is a string`)
  t.equal(typeof b.message, 'string', `${p}body.message is a string`)
  if (code === undefined) {
    t.ok(isProtocolCode(b.code), `${p}body.code ${String(b.code)} is a protocol or FST_ERR_ code`)
  } else {
    t.equal(b.code, code, `${p}body.code`)
  }
}
