/**
 * The plugin over HTTP/2 (Fastify's `http2: true` with TLS), spoken to with node:http2 on
 * 127.0.0.1, several streams on one connection: register, a held poll woken by a message,
 * supersede (409), HEAD /poll, a cancelled stream, a response that is not read (responseTimeout),
 * and shutdown. HTTP/2 forbids connection-specific headers: no response carries `connection`,
 * and Node emits no warning about one.
 */
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import longPollChat from '../lib/index.js'
import type { LongPollChatOptions } from '../types/index.js'
import { selfSigned, tlsSkip } from './helpers/tls.js'
import { sleep, waitFor } from './helpers/wait.js'

interface H2Reply { status: number, headers: IncomingHttpHeaders, text: string, body: any }

interface H2Server {
  app: ReturnType<typeof Fastify>
  session: ClientHttp2Session
  request (method: string, path: string, opts?: { token?: string, json?: unknown, signal?: AbortSignal }): Promise<H2Reply>
  held (): Promise<number>
}

async function h2Server (t: Test, options: LongPollChatOptions = {}): Promise<H2Server> {
  const { key, cert } = selfSigned()
  const app = Fastify({ http2: true, https: { key, cert } }) as unknown as ReturnType<typeof Fastify>
  await app.register(longPollChat, { prefix: '/chat', ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const session = connect(`https://127.0.0.1:${port}`, { ca: cert, servername: 'localhost' })
  session.on('error', () => {})
  t.teardown(async () => {
    session.destroy()
    await app.close()
  })
  const request: H2Server['request'] = (method, path, opts = {}) => new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ':method': method, ':path': '/chat' + path }
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
    const body = opts.json === undefined ? undefined : JSON.stringify(opts.json)
    if (body !== undefined) headers['content-type'] = 'application/json'
    const stream = session.request(headers, { signal: opts.signal } as object)
    let response: IncomingHttpHeaders = {}
    const chunks: Buffer[] = []
    stream.on('response', (h) => { response = h })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('error', reject)
    stream.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      let parsed: unknown = null
      try { parsed = text === '' ? null : JSON.parse(text) } catch {}
      resolve({ status: Number(response[':status']), headers: response, text, body: parsed })
    })
    stream.end(body)
  })
  return { app, session, request, held: async () => (await app.longPoll.stats()).heldPolls }
}

function noConnectionHeader (t: Test, res: H2Reply, what: string): void {
  t.equal(res.headers.connection, undefined, `${what}: no connection header on HTTP/2`)
  t.match(res.headers['cache-control'], /no-store/, `${what}: cache-control: no-store`)
}

t.test('HTTP/2: register, a held poll woken by a message, 409, HEAD, a cancelled stream, shutdown', { skip: tlsSkip }, async (t) => {
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })

  const s = await h2Server(t, { pollTimeout: 10_000 })
  const reg = await s.request('POST', '/register', { json: { rooms: ['r'] } })
  t.equal(reg.status, 201, 'register over HTTP/2')
  noConnectionHeader(t, reg, 'register')
  const a = reg.body
  const other = (await s.request('POST', '/register', { json: { rooms: ['r'] } })).body
  const first = await s.request('GET', `/poll?cursor=${a.cursor}&wait=0`, { token: a.token })
  t.equal(first.status, 200)
  t.same(first.body.messages.map((m: { type: string }) => m.type), ['join', 'join'], 'both joins')

  // Two streams of one connection: the second poll of the session supersedes the first.
  const older = s.request('GET', `/poll?cursor=${first.body.cursor}`, { token: a.token })
  await waitFor(async () => await s.held() === 1, 'the first poll to be held')
  const newer = s.request('GET', `/poll?cursor=${first.body.cursor}`, { token: a.token })
  const superseded = await older
  t.equal(superseded.status, 409, 'the older held poll: 409')
  t.equal(superseded.body.code, 'LONGPOLL_POLL_SUPERSEDED')
  noConnectionHeader(t, superseded, '409')
  await waitFor(async () => await s.held() === 1, 'the newer poll to be held')
  const sent = await s.request('POST', '/messages', { token: other.token, json: { data: 'over h2', room: 'r' } })
  t.equal(sent.status, 202)
  const woken = await newer
  t.equal(woken.status, 200, 'the held poll is answered by the message')
  t.same(woken.body.messages.map((m: { data: unknown }) => m.data), ['over h2'])
  noConnectionHeader(t, woken, 'poll')

  // HEAD acknowledges, delivers nothing.
  const head = await s.request('HEAD', `/poll?cursor=${woken.body.cursor}`, { token: a.token })
  t.equal(head.status, 200, 'HEAD /poll over HTTP/2')
  t.equal(head.text, '', 'no body')

  // A held stream cancelled by the client is forgotten.
  const ac = new AbortController()
  const cancelled = s.request('GET', `/poll?cursor=${woken.body.cursor}`, { token: a.token, signal: ac.signal }).catch((err: Error) => err.name)
  await waitFor(async () => await s.held() === 1, 'the poll to be held')
  ac.abort()
  t.equal(await cancelled, 'AbortError', 'the client cancelled its stream')
  t.ok(await waitFor(async () => await s.held() === 0, 'the cancelled poll to be released'), 'released')

  // Shutdown: held polls get 503 with retry-after, no connection header.
  const closing = s.request('GET', `/poll?cursor=${woken.body.cursor}`, { token: a.token })
  await waitFor(async () => await s.held() === 1, 'the poll to be held')
  const closed = s.app.close()
  const res = await closing
  t.equal(res.status, 503, 'held poll on close: 503')
  t.equal(res.body.code, 'LONGPOLL_SHUTTING_DOWN')
  t.equal(res.headers['retry-after'], '1')
  noConnectionHeader(t, res, '503 on close')
  s.session.close()
  await closed
  t.same(warnings.map((w) => w.message), [], 'no warning from Node (no forbidden header was set)')
})

t.test('HTTP/2: a poll response the client does not read is cancelled after responseTimeout; the session is busy meanwhile', { skip: tlsSkip }, async (t) => {
  const s = await h2Server(t, { responseTimeout: 300, maxMessageBytes: 1 << 20, maxPollBytes: 8 << 20, rateLimit: false })
  const a = (await s.request('POST', '/register')).body
  for (let i = 0; i < 4; i++) await s.app.longPoll.send(a.id, 'x'.repeat(500_000))
  // A stream that never reads: HTTP/2 flow control stops the server after the client's window.
  const stream = s.session.request({ ':method': 'GET', ':path': `/chat/poll?cursor=${a.cursor}`, authorization: `Bearer ${a.token}` })
  stream.pause()
  let status = 0
  stream.on('response', (h) => { status = Number(h[':status']) })
  const ended = new Promise<number | null>((resolve) => {
    stream.on('close', () => resolve(stream.rstCode ?? null))
    stream.on('error', () => {})
  })
  await waitFor(() => status !== 0, 'the response headers')
  t.equal(status, 200)
  const busy = await s.request('GET', `/poll?cursor=${a.cursor}&wait=0`, { token: a.token })
  t.equal(busy.status, 429, 'another poll of the session while the response is being written: 429')
  t.equal(busy.body?.code, 'LONGPOLL_POLL_BUSY')
  t.equal(busy.headers['retry-after'], '1')
  const code = await ended
  t.equal(code, constants.NGHTTP2_CANCEL, 'the unread stream was cancelled by the server')
  await sleep(20)
  const after = await s.request('GET', `/poll?cursor=${a.cursor}&wait=0`, { token: a.token, signal: AbortSignal.timeout(5000) })
  t.equal(after.status, 200, 'then the session polls again')
  t.equal(after.body.messages.length, 4, 'and gets the messages: nothing was acknowledged')
})
