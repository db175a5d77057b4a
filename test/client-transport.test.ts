/**
 * The client's transport and small pieces (lib/client/http.ts, queue.ts) on their own: requests
 * against a stub server on 127.0.0.1 that answers what a proxy or a failing server might (empty
 * bodies, bodies that are not the wire's error, `retry-after` as a date), requests made after the
 * client closed or the tab stopped leading, and the dedupe window, the iteration queue and URLs
 * resolved against the page.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { parseRetryAfter, toClientError, Transport } from '../lib/client/http.js'
import { absolute, MessageQueue, RecentIds, sleep as cancellableSleep } from '../lib/client/queue.js'
import { ChatClientError } from '../lib/client/types.js'

interface Seen { method: string, url: string, headers: IncomingMessage['headers'], body: string }

/** A server on 127.0.0.1 answering with `handler`; what it was asked, in order. */
async function stub (t: Test, handler: (req: Seen, res: ServerResponse) => void): Promise<{ url: string, seen: Seen[] }> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }
      seen.push(r)
      handler(r, res)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/chat/`, seen }
}

function transport (url: string, close = new AbortController(), timeout = 5000): Transport {
  return new Transport(url, fetch, close.signal, timeout)
}

async function failure (p: Promise<unknown>): Promise<ChatClientError> {
  try {
    await p
  } catch (err) {
    if (err instanceof ChatClientError) return err
    throw err
  }
  throw new Error('expected the request to fail')
}

t.test('requests: the paths and query of PROTOCOL.md, the token in a header, JSON both ways', async (t) => {
  const { url, seen } = await stub(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(req.url.startsWith('/chat/poll') ? '{"cursor":"9","messages":[],"missed":0}' : req.method === 'DELETE' ? '' : '{"ok":true}')
  })
  const tr = transport(url)
  t.same(await tr.poll('tok', { cursor: null, holdMs: 100 }), { cursor: '9', messages: [], missed: 0 })
  await tr.poll('tok', { cursor: '5', wait: 0, holdMs: 100 })
  await tr.join('tok', 'a room/1')
  await tr.endSession('tok')
  t.same(seen.map(r => `${r.method} ${r.url}`), [
    'GET /chat/poll',
    'GET /chat/poll?cursor=5&wait=0',
    'POST /chat/rooms/a%20room%2F1/join',
    'DELETE /chat/session'
  ], 'no query without a cursor or a wait; the room name escaped; the base URL\'s trailing slash dropped')
  t.equal(seen[0]?.headers.authorization, 'Bearer tok')
  t.equal(seen[0]?.headers['content-type'], undefined, 'no body, no content type')
  const sent = await tr.send('tok', { data: { n: 1 }, room: 'lobby' })
  t.same(sent, { ok: true })
  t.same(JSON.parse(seen.at(-1)?.body ?? ''), { data: { n: 1 }, room: 'lobby' })
  t.equal(seen.at(-1)?.headers['content-type'], 'application/json')
})

t.test('error answers that are not the wire\'s error body still give a status, a code and a message', async (t) => {
  const when = new Date(Date.now() + 60_000).toUTCString()
  const { url } = await stub(t, (req, res) => {
    if (req.url.includes('empty')) {
      res.writeHead(502)
      res.end()
    } else if (req.url.includes('typed')) {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end('{"code":500,"message":{"text":"no"}}')
    } else if (req.url.includes('date')) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': when })
      res.end('{"code":"LONGPOLL_STORE_UNAVAILABLE","message":"busy"}')
    } else {
      res.writeHead(429, { 'retry-after': 'soon' })
      res.end('<html>slow down</html>')
    }
  })
  const tr = transport(url)
  const empty = await failure(tr.members('tok', 'empty'))
  t.match(empty, { statusCode: 502, code: 'HTTP_502', message: 'GET /rooms/empty/members: HTTP 502', retryAfterMs: undefined }, 'an empty body')
  const typed = await failure(tr.members('tok', 'typed'))
  t.match(typed, { statusCode: 500, code: 'HTTP_500', message: 'GET /rooms/typed/members: HTTP 500' }, 'a code and a message of the wrong types are not used')
  const dated = await failure(tr.members('tok', 'date'))
  t.match(dated, { statusCode: 503, code: 'LONGPOLL_STORE_UNAVAILABLE', message: 'busy' })
  t.ok(dated.retryAfterMs !== undefined && dated.retryAfterMs > 50_000 && dated.retryAfterMs <= 60_000, `retry-after as an HTTP date: about a minute (${String(dated.retryAfterMs)} ms)`)
  const html = await failure(tr.members('tok', 'html'))
  t.match(html, { statusCode: 429, code: 'HTTP_429', retryAfterMs: undefined }, 'a page, and a retry-after that reads as neither seconds nor a date')
})

t.test('parseRetryAfter: seconds, an HTTP date (a past one is 0), or nothing', async (t) => {
  t.equal(parseRetryAfter(null), undefined)
  t.equal(parseRetryAfter('  '), undefined)
  t.equal(parseRetryAfter('3'), 3000)
  t.equal(parseRetryAfter('0.5'), 500)
  t.equal(parseRetryAfter(new Date(Date.now() - 10_000).toUTCString()), 0, 'a date in the past: at once')
  t.equal(parseRetryAfter('tomorrow'), undefined)
})

t.test('after close, and when the tab stops leading: abortable requests fail as closed, others still go', async (t) => {
  const { url, seen } = await stub(t, (req, res) => {
    if (req.url.startsWith('/chat/poll')) return // held: never answered
    res.writeHead(req.method === 'POST' && req.url === '/chat/register' ? 201 : 200, { 'content-type': 'application/json' })
    res.end('{"id":"S","token":"T","cursor":"0"}')
  })
  const close = new AbortController()
  const tr = transport(url, close)

  const step = new AbortController()
  const held = tr.poll('tok', { cursor: '1', holdMs: 60_000 }, step.signal)
  for (let i = 0; i < 200 && seen.length === 0; i++) await cancellableSleep(5).promise
  step.abort()
  t.match(await failure(held), { code: 'LONGPOLL_CLIENT_CLOSED' }, 'a held poll, when the tab steps down')
  t.match(await failure(tr.poll('tok', { cursor: '1', holdMs: 60_000 }, step.signal)), { code: 'LONGPOLL_CLIENT_CLOSED' }, 'a poll with a signal already aborted')

  close.abort()
  const before = seen.length
  t.match(await failure(tr.register({ rooms: [] })), { code: 'LONGPOLL_CLIENT_CLOSED' }, 'a registration after close')
  t.match(await failure(tr.poll('tok', { cursor: '1', holdMs: 100 })), { code: 'LONGPOLL_CLIENT_CLOSED' }, 'a poll after close')
  await tr.endSession('tok')
  t.same(seen.slice(before).map(r => `${r.method} ${r.url}`), ['DELETE /chat/session'], 'only the request that is not abortable reached the server (ending the session)')
})

t.test('a request the server does not answer in time, and one to a port nothing listens on', async (t) => {
  const { url } = await stub(t, () => {})
  const slow = transport(url, new AbortController(), 100)
  t.match(await failure(slow.send('tok', { data: 1 })), { code: 'LONGPOLL_CLIENT_TIMEOUT', message: 'POST /messages timed out' })

  // A port nothing listens on any more: the connection is refused.
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  const gone = transport(`http://127.0.0.1:${port}/chat`)
  const err = await failure(gone.send('tok', { data: 1 }))
  t.match(err, { code: 'LONGPOLL_CLIENT_NETWORK', message: /^POST \/messages failed: /, statusCode: undefined })
  t.type((err as { cause?: unknown }).cause, TypeError, 'the cause kept')

  // A fetch (a polyfill, a wrapper) that rejects with something other than an Error.
  const rejectWith = (value: unknown): typeof fetch => async () => await Promise.reject(value)
  const odd = new Transport('http://127.0.0.1:1/chat', rejectWith('offline'), new AbortController().signal, 1000)
  t.match(await failure(odd.send('tok', { data: 1 })), { code: 'LONGPOLL_CLIENT_NETWORK', message: 'POST /messages failed: offline', cause: 'offline' })
})

t.test('toClientError: a client error as it is, anything else as a network error with its cause', async (t) => {
  const own = new ChatClientError('x', 'LONGPOLL_CLIENT_TIMEOUT')
  t.equal(toClientError(own), own)
  const boom = new RangeError('boom')
  const wrapped = toClientError(boom)
  t.match(wrapped, { code: 'LONGPOLL_CLIENT_NETWORK', message: 'boom' })
  t.equal((wrapped as { cause?: unknown }).cause, boom)
  t.match(toClientError('a string'), { code: 'LONGPOLL_CLIENT_NETWORK', message: 'a string' })
  t.match(toClientError(undefined), { code: 'LONGPOLL_CLIENT_NETWORK', message: 'undefined' })
})

t.test('RecentIds forgets the oldest id once its window is full', async (t) => {
  const ids = new RecentIds(2)
  t.ok(ids.add('a'))
  t.ok(ids.add('b'))
  t.notOk(ids.add('a'), 'a seen')
  t.ok(ids.add('c'), 'the window moves: a is forgotten')
  t.notOk(ids.add('b'))
  t.ok(ids.add('a'), 'a is new again')
  t.notOk(ids.add('c'))
  const one = new RecentIds(0)
  t.ok(one.add('x'))
  t.notOk(one.add('x'), 'a window of at least one')
})

t.test('MessageQueue: waiting readers first, then the backlog; nothing after the end', async (t) => {
  let returned = 0
  let taken = 0
  const q = new MessageQueue<number>(() => { returned++ }, () => { taken++ })
  const waiting = q.next()
  q.push(1, 2)
  t.same(await waiting, { value: 1, done: false }, 'a waiting reader gets the first')
  t.equal(q.length, 1)
  t.same(await q.next(), { value: 2, done: false })
  t.equal(taken, 1, 'onTake counts what came from the backlog')
  const pending = q.next()
  q.end()
  t.same(await pending, { value: undefined, done: true }, 'the end releases a waiting reader')
  q.push(3)
  t.equal(q.length, 0, 'nothing is queued after the end')
  t.same(await q.next(), { value: undefined, done: true })
  t.same(await q.return(), { value: undefined, done: true })
  t.equal(returned, 1)
})

t.test('sleep: cancel() ends it early, and resolves', async (t) => {
  const s = cancellableSleep(60_000)
  s.cancel()
  await s.promise
  t.pass('a minute-long sleep cancelled at once')
})

t.test('absolute: a URL resolved against the page, or as it is where there is no page', async (t) => {
  const g = globalThis as { location?: unknown }
  t.equal(absolute('/chat'), '/chat', 'no page: a relative URL stays as it is')
  t.equal(absolute('http://127.0.0.1:1/chat'), 'http://127.0.0.1:1/chat')
  g.location = { href: 'https://example.test/app/index.html' }
  t.teardown(() => { delete g.location })
  t.equal(absolute('/chat'), 'https://example.test/chat')
  t.equal(absolute('chat'), 'https://example.test/app/chat', 'relative to the page')
  g.location = {}
  t.equal(absolute('/chat'), '/chat', 'a page without an address')
})
