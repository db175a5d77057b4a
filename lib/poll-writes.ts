/**
 * Poll responses on the wire: the payloads (built as text around the store's serialized
 * messages), the poll's error answers, and the responses still being written. One poll of a session is served at a time:
 * while a poll response has bytes the OS did not take yet, the session is busy (another poll
 * with its token gets 429 LONGPOLL_POLL_BUSY), and a response not written within
 * `responseTimeout` gets its connection closed (HTTP/2: its stream cancelled), which frees it.
 * A response written at once (the usual case) costs nothing here: no timer, no listener.
 */
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { constants as http2 } from 'node:http2'
import {
  BadCursorError, PollSupersededError, ShuttingDownError, StoreUnavailableError, UnknownSessionError
} from './errors.js'
import type { ReadResult } from './stores/store.js'

const kWrite = Symbol('longPollWrite')

interface WriteState {
  readonly writes: PollWrites
  readonly tokenHash: string
  readonly timer: NodeJS.Timeout
}

/** The raw response: node:http's ServerResponse, or node:http2's Http2ServerResponse (with `stream`). */
export type Raw = FastifyReply['raw'] & {
  [kWrite]?: WriteState
  stream?: { destroyed: boolean, closed: boolean, close (code?: number): void }
}

export function pollPayload (result: ReadResult): string {
  return '{"cursor":"' + result.cursor + '","messages":[' + result.messages.join(',') + '],"missed":' + result.missed + '}'
}

export function emptyPayload (cursor: number): string {
  return '{"cursor":"' + cursor + '","messages":[],"missed":0}'
}

/**
 * The client is gone (or its HTTP/2 stream is): nobody to answer. A response to a request
 * pipelined behind another on one HTTP/1.1 connection has no socket of its own until the
 * responses before it are written: its request's socket tells whether the client is still there.
 */
export function gone (raw: Raw): boolean {
  const stream = raw.stream
  if (stream !== undefined) return stream.destroyed || stream.closed
  const socket = raw.socket ?? raw.req?.socket ?? null
  return raw.destroyed || socket === null || socket.destroyed
}

/** HTTP/1 (where `connection: close` may be sent; HTTP/2 forbids the header). */
export function isHttp1 (reply: FastifyReply): boolean {
  return (reply.request.raw as { httpVersionMajor?: number }).httpVersionMajor !== 2
}

/** 401 (with `www-authenticate`) or 400 for a poll the store refused. */
export function refused (reason: 'unknown' | 'bad-cursor', reply: FastifyReply): void {
  if (reason === 'unknown') reply.header('www-authenticate', 'Bearer').send(new UnknownSessionError())
  else reply.send(new BadCursorError())
}

/** 503 while the server closes (`connection: close` on HTTP/1 only: HTTP/2 forbids it). */
export function refuseClosing (reply: FastifyReply): void {
  if (isHttp1(reply)) reply.header('connection', 'close')
  reply.header('retry-after', '1').send(new ShuttingDownError())
}

export function superseded (reply: FastifyReply): void {
  reply.send(new PollSupersededError())
}

export function unavailable (reply: FastifyReply, log: FastifyBaseLogger, err: unknown): void {
  log.warn({ err }, 'long-poll store unavailable')
  reply.header('retry-after', '1').send(new StoreUnavailableError())
}

/** Shared listener and timer callback (no closure per response). */
function onWriteDone (this: Raw): void {
  const state = this[kWrite]
  if (state === undefined) return
  this[kWrite] = undefined
  clearTimeout(state.timer)
  this.removeListener('finish', onWriteDone)
  this.removeListener('close', onWriteDone)
  state.writes.done(state.tokenHash, this)
}

function onResponseTimeout (raw: Raw): void {
  const state = raw[kWrite]
  if (state === undefined) return
  state.writes.log.info('long-poll poll response not read within responseTimeout: connection closed')
  if (raw.stream !== undefined) raw.stream.close(http2.NGHTTP2_CANCEL)
  else raw.destroy()
}

export class PollWrites {
  /** Token hash → the poll response of that session still being written. */
  private readonly writing = new Map<string, Raw>()

  constructor (private readonly responseTimeout: number, readonly log: FastifyBaseLogger) {}

  /** Whether a poll response of this token's session is still being written. */
  busy (tokenHash: string): boolean {
    return this.writing.has(tokenHash)
  }

  /** Sends a 200 poll body; when the OS did not take it all at once, tracks it until it has. */
  send (reply: FastifyReply, tokenHash: string, payload: string): void {
    reply.type('application/json; charset=utf-8').send(payload)
    const raw = reply.raw as Raw
    if (raw.writableLength === 0 || raw[kWrite] !== undefined || gone(raw)) return
    raw[kWrite] = { writes: this, tokenHash, timer: setTimeout(onResponseTimeout, this.responseTimeout, raw).unref() }
    this.writing.set(tokenHash, raw)
    raw.on('finish', onWriteDone)
    raw.on('close', onWriteDone)
  }

  done (tokenHash: string, raw: Raw): void {
    if (this.writing.get(tokenHash) === raw) this.writing.delete(tokenHash)
  }
}
