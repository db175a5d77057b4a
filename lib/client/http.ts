/**
 * The client's transport: one method per route of PROTOCOL.md over `fetch`, with timeouts, the
 * close signal, and the mapping of every failure to a `ChatClientError` (the server's status,
 * code and `retry-after`, or a network, timeout or closed error). It keeps no session state: the
 * token comes with each call, and what to do about an error is the caller's choice (index.ts).
 */
import type {
  HistoryReply, MembersReply, MessageBody, MessageReply, PollReply, RegisterBody, RegisterReply
} from '../wire.js'
import { ChatClientError } from './types.js'

/** `retry-after` in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter (value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/** Any failure as a `ChatClientError` (a thrown non-client error counts as a network error). */
export function toClientError (err: unknown): ChatClientError {
  if (err instanceof ChatClientError) return err
  return new ChatClientError(String((err as Error)?.message ?? err), 'LONGPOLL_CLIENT_NETWORK', undefined, undefined, err)
}

/** A query string of the parameters that are set (`''` when none is). */
function query (params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) if (value !== undefined) search.set(key, String(value))
  const text = search.toString()
  return text === '' ? '' : '?' + text
}

export interface RequestOptions {
  body?: unknown
  token?: string
  headers?: Record<string, string>
  timeoutMs: number
  /** Aborts the request when the client closes (polls, registration); other requests run to their end. */
  abortable?: boolean
  /** Aborts the request too (a poll, when the tab stops leading). */
  signal?: AbortSignal
  keepalive?: boolean
}

export interface PollRequest {
  /** The cursor of the previous poll; null asks for the server's position for the session. */
  cursor: string | null
  /** `wait`: the longest hold in ms; undefined leaves it to the server. */
  wait?: number
  /** The longest time the caller expects the server to hold the poll (the timeout adds `requestTimeout`). */
  holdMs: number
}

export class Transport {
  private readonly base: string
  private readonly doFetch: typeof fetch

  /**
   * `url`: the plugin's base URL, prefix included; `closeSignal`: aborts the abortable requests
   * (registration, polls) when the client closes; `requestTimeout`: the timeout of every request,
   * added to the hold for polls.
   */
  constructor (url: string, doFetch: typeof fetch, private readonly closeSignal: AbortSignal, private readonly requestTimeout: number) {
    this.base = url.replace(/\/+$/, '')
    // Called as a plain function: browsers throw "Illegal invocation" for fetch called on another object.
    this.doFetch = async (input, init) => await doFetch(input, init)
  }

  /** `POST /register`; `headers` are the application's (for the server's `authenticate` option). */
  async register (body: RegisterBody, headers?: Record<string, string>): Promise<RegisterReply> {
    return await this.request<RegisterReply>('POST', '/register', { body, headers, timeoutMs: this.requestTimeout, abortable: true })
  }

  /** `GET /poll`; `signal` aborts it as well as closing does. */
  async poll (token: string, poll: PollRequest, signal?: AbortSignal): Promise<PollReply> {
    return await this.request<PollReply>('GET', `/poll${query({ cursor: poll.cursor ?? undefined, wait: poll.wait })}`, {
      token,
      timeoutMs: poll.holdMs + this.requestTimeout,
      abortable: true,
      signal
    })
  }

  /** `POST /messages` */
  async send (token: string, body: MessageBody): Promise<MessageReply> {
    return await this.request<MessageReply>('POST', '/messages', { body, token, timeoutMs: this.requestTimeout })
  }

  /** `POST /rooms/:room/join`, with `?history=N` when `history` is given (then the reply is a history page). */
  async join (token: string, room: string, history?: number): Promise<HistoryReply | undefined> {
    const query = history === undefined ? '' : `?history=${history}`
    return await this.request<HistoryReply | undefined>('POST', `/rooms/${encodeURIComponent(room)}/join${query}`, { token, timeoutMs: this.requestTimeout })
  }

  /** `POST /rooms/:room/leave` */
  async leave (token: string, room: string): Promise<void> {
    await this.request('POST', `/rooms/${encodeURIComponent(room)}/leave`, { token, timeoutMs: this.requestTimeout })
  }

  /** `GET /rooms/:room/members?limit&after` */
  async members (token: string, room: string, page: { after?: string, limit?: number } = {}): Promise<MembersReply> {
    const path = `/rooms/${encodeURIComponent(room)}/members${query({ limit: page.limit, after: page.after })}`
    return await this.request<MembersReply>('GET', path, { token, timeoutMs: this.requestTimeout })
  }

  /** `GET /rooms/:room/history?limit&before` */
  async history (token: string, room: string, page: { before?: string, limit?: number } = {}): Promise<HistoryReply> {
    const path = `/rooms/${encodeURIComponent(room)}/history${query({ limit: page.limit, before: page.before })}`
    return await this.request<HistoryReply>('GET', path, { token, timeoutMs: this.requestTimeout })
  }

  /** `DELETE /session`, with `keepalive` so that it is sent even while the page unloads. */
  async endSession (token: string): Promise<void> {
    await this.request('DELETE', '/session', { token, timeoutMs: this.requestTimeout, keepalive: true })
  }

  /** One request: resolves with the parsed JSON body of a 2xx, rejects with a `ChatClientError`. */
  async request<R> (method: string, path: string, options: RequestOptions): Promise<R> {
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; controller.abort() }, options.timeoutMs)
    const onClose = (): void => controller.abort()
    if (options.abortable === true) {
      if (this.closeSignal.aborted) controller.abort()
      this.closeSignal.addEventListener('abort', onClose)
    }
    if (options.signal !== undefined) {
      if (options.signal.aborted) controller.abort()
      options.signal.addEventListener('abort', onClose)
    }
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    // `no-store` keeps the request out of the browser's HTTP cache altogether, so that it does not
    // wait for another request to the same URL (Chromium's cache lock): tabs with a session each
    // poll the same URL whenever their cursors are equal, which with protocol 2 they often are,
    // and each such poll would wait for the held poll before it (one held poll per browser).
    const init: RequestInit = { method, headers, signal: controller.signal, cache: 'no-store' }
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json'
      init.body = JSON.stringify(options.body)
    }
    if (options.keepalive === true) init.keepalive = true
    try {
      let res: Response
      let text: string
      try {
        res = await this.doFetch(this.base + path, init)
        text = await res.text()
      } catch (err) {
        if (timedOut) throw new ChatClientError(`${method} ${path} timed out`, 'LONGPOLL_CLIENT_TIMEOUT', undefined, undefined, err)
        if (controller.signal.aborted) throw new ChatClientError('The client is closed', 'LONGPOLL_CLIENT_CLOSED', undefined, undefined, err)
        throw new ChatClientError(`${method} ${path} failed: ${String((err as Error)?.message ?? err)}`, 'LONGPOLL_CLIENT_NETWORK', undefined, undefined, err)
      }
      let json: unknown
      try {
        json = text === '' ? undefined : JSON.parse(text)
      } catch {
        json = undefined
      }
      if (!res.ok) {
        // The wire's ErrorReply, but read as untrusted: a proxy may answer with anything.
        const body = (json ?? {}) as { code?: unknown, message?: unknown }
        const code = typeof body.code === 'string' ? body.code : `HTTP_${res.status}`
        const message = typeof body.message === 'string' ? body.message : `${method} ${path}: HTTP ${res.status}`
        throw new ChatClientError(message, code, res.status, parseRetryAfter(res.headers.get('retry-after')))
      }
      return json as R
    } finally {
      clearTimeout(timer)
      this.closeSignal.removeEventListener('abort', onClose)
      options.signal?.removeEventListener('abort', onClose)
    }
  }
}
