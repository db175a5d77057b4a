/**
 * The client's less travelled paths, on 127.0.0.1: backpressure (`highWaterMark`), iterating a
 * client that is closed, a 401 on an authenticated call, and, against a stub server that answers
 * on cue what the plugin would not, `reconnect()` cutting a retry wait short, an error answer
 * that is not JSON, and a cursor the server no longer knows.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { ChatClientError } from '../lib/client.js'
import { client, startServer, type AppMessage } from './helpers/client.js'
import { sleep, waitFor } from './helpers/wait.js'

const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => { unhandled.push(reason) })

/** A server on 127.0.0.1 that answers with `handler`; its base URL is `<origin>/chat`. */
async function stub (t: Test, handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void): Promise<string> {
  const server = createServer((req, res) => {
    req.resume()
    handler(req, res, new URL(req.url ?? '/', 'http://127.0.0.1'))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/chat`
}

function json (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

const REGISTERED = { id: 'S1', token: 'T1-0123456789abcdef', cursor: '0', pollTimeoutMs: 500, messageTtlMs: 60000, sessionTtlMs: 300000 }

/** The stub's answer to what every client does besides polling. */
function basics (req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  if (req.method === 'POST' && url.pathname === '/chat/register') { json(res, 201, REGISTERED); return true }
  if (req.method === 'DELETE' && url.pathname === '/chat/session') { res.writeHead(204); res.end(); return true }
  return false
}

/** An empty poll answer after a short hold (cut when the client goes away). */
function emptyPoll (res: ServerResponse, cursor: string): void {
  const timer = setTimeout(() => json(res, 200, { cursor, messages: [], missed: 0 }), 300)
  res.on('close', () => clearTimeout(timer))
}

t.test('highWaterMark: a consumer that falls behind holds the next poll until it catches up', { timeout: 20_000 }, async (t) => {
  const { app, url } = await startServer(t)
  const chat = client(t, { url, highWaterMark: 2 })
  const it = chat[Symbol.asyncIterator]()
  await chat.ready()
  const id = chat.id as string
  for (let n = 1; n <= 4; n++) await app.longPoll.send(id, { n })
  await waitFor(async () => (await app.longPoll.stats()).delivered === 4, 'the four messages to reach the client', 5000)
  await sleep(300)
  t.equal((await app.longPoll.stats()).heldPolls, 0, 'four behind with highWaterMark 2: the client does not poll')

  const got: number[] = []
  for (let i = 0; i < 3; i++) got.push(((await it.next()).value as AppMessage).data.n)
  await waitFor(async () => (await app.longPoll.stats()).heldPolls === 1, 'a poll once the consumer is less than 2 behind', 5000)
  got.push(((await it.next()).value as AppMessage).data.n)
  await app.longPoll.send(id, { n: 5 })
  got.push(((await it.next()).value as AppMessage).data.n)
  t.same(got, [1, 2, 3, 4, 5], 'every message, in order: nothing dropped while the client waited')
})

t.test('iterating a closed client yields what nobody consumed yet, then ends', { timeout: 20_000 }, async (t) => {
  const { app, url } = await startServer(t)
  const chat = client(t, { url })
  await chat.ready()
  const id = chat.id as string
  await app.longPoll.send(id, { n: 1 })
  await app.longPoll.send(id, { n: 2 })
  // Acknowledged by the client's next poll: it has handled the answer that carried them.
  await waitFor(async () => {
    const st = await app.longPoll.stats()
    return st.delivered === 2 && st.queued === 0 && st.heldPolls === 1
  }, 'both messages to reach the client and be acknowledged', 5000)
  await chat.close()
  const got: unknown[] = []
  for await (const m of chat) got.push(m.type === 'message' ? m.data : m.type)
  t.same(got, [{ n: 1 }, { n: 2 }], 'the two kept for the first consumer, and the iteration is over')
})

t.test('a 401 on an authenticated call: the client registers again and the call goes through once', { timeout: 20_000 }, async (t) => {
  const { app, url } = await startServer(t)
  let spoiled = 0
  // The first POST /messages carries a token the server does not know (as after a restart).
  const spoil: typeof fetch = async (input, init) => {
    if (String(input).endsWith('/messages') && spoiled++ === 0) {
      init = { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: 'Bearer not-a-known-token-0000' } }
    }
    return await fetch(input, init)
  }
  const chat = client(t, { url, fetch: spoil })
  await chat.ready()
  const first = chat.id as string
  const sessions: Array<{ id: string, previousId: string | null }> = []
  chat.on('session', e => sessions.push(e))
  const sent = await chat.send({ n: 1 }, { to: first })
  t.match(sent, { id: String }, 'the send is accepted')
  t.equal(spoiled, 2, 'sent twice: refused with 401, then with the new token')
  t.same(sessions.map(s => s.previousId), [first], 'after registering again')
  t.equal((await app.longPoll.members()).some(m => m.id === chat.id), true, 'the new session is live')
})

t.test('reconnect() cuts a retry wait short', { timeout: 20_000 }, async (t) => {
  const polls: number[] = []
  const url = await stub(t, (req, res, u) => {
    if (basics(req, res, u)) return
    polls.push(Date.now())
    if (polls.length === 1) return json(res, 503, { statusCode: 503, code: 'LONGPOLL_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'down' }, { 'retry-after': '30' })
    emptyPoll(res, '0')
  })
  const chat = client(t, { url })
  const retrying = new Promise<{ delayMs: number }>(resolve => { const off = chat.on('retrying', e => { off(); resolve(e) }) })
  const { delayMs } = await retrying
  t.ok(delayMs >= 30_000, `told to wait at least 30 s (${delayMs} ms)`)
  const at = Date.now()
  chat.reconnect()
  await waitFor(() => polls.length >= 2, 'the next poll', 5000)
  t.ok((polls[1] as number) - at < 2000, `polled again at once (${(polls[1] as number) - at} ms), not after 30 s`)
  await waitFor(() => chat.state === 'live', 'the client to be live again', 5000)
})

t.test('an error answer that is not JSON (a proxy\'s page): HTTP_<status>, then the client retries', { timeout: 20_000 }, async (t) => {
  let polls = 0
  const url = await stub(t, (req, res, u) => {
    if (basics(req, res, u)) return
    if (++polls === 1) {
      res.writeHead(502, { 'content-type': 'text/html' })
      return res.end('<html><body>Bad gateway</body></html>')
    }
    emptyPoll(res, '0')
  })
  const chat = client(t, { url, retry: { min: 10, max: 20 } })
  const retrying = new Promise<ChatClientError>(resolve => { const off = chat.on('retrying', e => { off(); resolve(e.error) }) })
  const err = await retrying
  t.match(err, { code: 'HTTP_502', statusCode: 502, message: /HTTP 502/ })
  await waitFor(() => chat.state === 'live', 'the client to be live again', 5000)
  t.ok(polls >= 2, 'polled again')
})

t.test('a cursor the server no longer knows (400 LONGPOLL_BAD_CURSOR): the client polls from the server\'s position', { timeout: 20_000 }, async (t) => {
  const cursors: Array<string | null> = []
  const message = { id: 'm1', type: 'message', from: null, room: null, to: 'S1', data: { n: 1 }, ts: 1 }
  const url = await stub(t, (req, res, u) => {
    if (basics(req, res, u)) return
    cursors.push(u.searchParams.get('cursor'))
    if (cursors.length === 1) return json(res, 200, { cursor: '7', messages: [message], missed: 0 })
    if (cursors.length === 2) return json(res, 400, { statusCode: 400, code: 'LONGPOLL_BAD_CURSOR', error: 'Bad Request', message: 'unknown cursor' })
    emptyPoll(res, '7')
  })
  client(t, { url, retry: { min: 10, max: 20 } })
  await waitFor(() => cursors.length >= 3, 'three polls', 5000)
  t.same(cursors.slice(0, 3), ['0', '7', null], 'the cursor of the answer, then none after the 400')
})

t.test('no unhandled rejection in the whole file', async (t) => {
  await sleep(100)
  t.same(unhandled, [])
})
