/**
 * The client when responses go wrong, on 127.0.0.1: poll responses lost in flight (nothing lost,
 * no duplicates), redelivered messages (deduplicated), and `retry-after` on 503 and 429 (a stub
 * server that answers them on cue). Restarts and outages: client-restart.test.ts.
 */
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ChatState } from '../lib/client.js'
import { client, collect, startServer, type AppMessage } from './helpers/client.js'
import { sleep, waitFor } from './helpers/wait.js'

const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => { unhandled.push(reason) })

t.test('poll responses lost in flight: nothing lost, no duplicates, in order', { timeout: 20_000 }, async (t) => {
  const { app, url } = await startServer(t)
  let polls = 0
  let dropped = 0
  // Lets the server answer, reads the whole response, then loses every other one that had messages.
  const lossy: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (!String(input).includes('/poll')) return res
    const text = await res.text()
    if (res.status === 200 && JSON.parse(text).messages.length > 0 && polls++ % 2 === 0) {
      dropped++
      throw new TypeError('fetch failed (response dropped by the test)')
    }
    return new Response(text, { status: res.status, headers: res.headers })
  }
  const chat = client(t, { url, fetch: lossy, retry: { min: 20, max: 200 } })
  const total = 40
  const got = collect(chat, total)
  await chat.ready()
  for (let i = 0; i < total; i++) {
    await app.longPoll.broadcast({ n: i })
    if (i % 4 === 3) await sleep(30)
  }
  const messages = await got
  t.same(messages.map(m => m.data.n), Array.from({ length: total }, (_, i) => i), 'all, once, in order')
  t.equal(new Set(messages.map(m => m.id)).size, total)
  t.ok(dropped >= 3, `${dropped} responses were lost`)
  await sleep(200)
  t.equal(messages.length, total, 'nothing more arrived afterwards')
})

t.test('messages delivered again are handed over once', { timeout: 20_000 }, async (t) => {
  const { app, url } = await startServer(t)
  let redelivered = 0
  // Turns back the cursor of every other response with messages, as if the acknowledgement was
  // lost: the server then sends those messages again.
  let flip = false
  const rewind: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    const href = String(input)
    if (!href.includes('/poll') || res.status !== 200) return res
    const body = await res.json() as { cursor: string, messages: unknown[] }
    const sent = new URL(href).searchParams.get('cursor')
    if (body.messages.length > 0 && sent !== null) {
      flip = !flip
      if (flip) {
        body.cursor = sent
        redelivered += body.messages.length
      }
    }
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } })
  }
  const chat = client(t, { url, fetch: rewind })
  const all: AppMessage[] = []
  chat.on('message', m => { if (m.type === 'message') all.push(m) })
  const got = collect(chat, 10)
  await chat.ready()
  for (let i = 0; i < 10; i++) {
    await app.longPoll.broadcast({ n: i })
    await sleep(10)
  }
  await got
  await sleep(300)
  t.ok(redelivered > 0, `${redelivered} messages were delivered twice by the server`)
  t.same(all.map(m => m.data.n), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each once, in order')
})

t.test('retry-after is honoured on 429 (register) and 503 (poll); send errors carry it', { timeout: 20_000 }, async (t) => {
  const calls: Array<{ what: string, at: number }> = []
  let registers = 0
  let polls = 0
  const message = { id: 'm1', type: 'message', from: null, room: null, to: null, data: { n: 1 }, ts: 1 }
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
    res.end(JSON.stringify(body))
  }
  const stub = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    const what = `${req.method} ${req.url?.split('?')[0]}`
    calls.push({ what, at: Date.now() })
    if (what === 'POST /chat/register') {
      if (registers++ === 0) return json(res, 429, { statusCode: 429, code: 'LONGPOLL_RATE_LIMITED', error: 'Too Many Requests', message: 'slow down' }, { 'retry-after': '1' })
      return json(res, 201, { id: 'S1', token: 'T1', cursor: '0', pollTimeoutMs: 500, messageTtlMs: 60000, sessionTtlMs: 300000 })
    }
    if (what === 'GET /chat/poll') {
      polls++
      if (polls === 1) return json(res, 503, { statusCode: 503, code: 'LONGPOLL_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'store down' }, { 'retry-after': '1' })
      if (polls === 2) return json(res, 200, { cursor: '1', messages: [message], missed: 0 })
      if (polls === 3) return json(res, 502, { message: 'bad gateway' })
      const timer = setTimeout(() => json(res, 200, { cursor: '1', messages: [], missed: 0 }), 500)
      res.on('close', () => clearTimeout(timer))
      return
    }
    if (what === 'POST /chat/messages') return json(res, 429, { statusCode: 429, code: 'LONGPOLL_RATE_LIMITED', error: 'Too Many Requests', message: 'Too many messages; retry in 2 s' }, { 'retry-after': '2' })
    if (what === 'DELETE /chat/session') { res.writeHead(204); return res.end() }
    json(res, 404, { statusCode: 404, code: 'FST_ERR_NOT_FOUND', error: 'Not Found', message: 'no' })
  })
  await new Promise<void>(resolve => stub.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { stub.closeAllConnections(); stub.close(() => resolve()) }))
  const { port } = stub.address() as AddressInfo

  const chat = client(t, { url: `http://127.0.0.1:${port}/chat` })
  const retries: Array<{ delayMs: number, code: string, status: number | undefined }> = []
  chat.on('retrying', e => retries.push({ delayMs: e.delayMs, code: e.error.code, status: e.error.statusCode }))
  const got = collect(chat, 1)
  const states: ChatState[] = []
  chat.on('state', e => states.push(e.state))
  t.same((await got)[0].data, { n: 1 })
  // Wait for the 502 and the poll after it to be answered.
  await waitFor(() => polls >= 4 && states.length >= 7, 'the 502 and the poll after it', 5000, 25)

  const at = (what: string, i: number): number => calls.filter(c => c.what === what)[i].at
  t.ok(at('POST /chat/register', 1) - at('POST /chat/register', 0) >= 1000, 'registered again no sooner than retry-after (429)')
  t.ok(at('GET /chat/poll', 1) - at('GET /chat/poll', 0) >= 1000, 'polled again no sooner than retry-after (503)')
  t.match(retries.slice(0, 3), [
    { code: 'LONGPOLL_RATE_LIMITED', status: 429 },
    { code: 'LONGPOLL_STORE_UNAVAILABLE', status: 503 },
    { code: 'HTTP_502', status: 502 }
  ])
  t.ok(retries[0].delayMs >= 1000 && retries[0].delayMs <= 1100, `429 wait ${retries[0].delayMs} ms`)
  t.ok(retries[1].delayMs >= 1000 && retries[1].delayMs <= 1100, `503 wait ${retries[1].delayMs} ms`)
  t.ok(retries[2].delayMs >= 125 && retries[2].delayMs <= 250, `502: backoff from 250 ms with jitter (${retries[2].delayMs} ms)`)
  t.same(states, ['retrying', 'connecting', 'live', 'retrying', 'live', 'retrying', 'live'],
    '429 at register, registered, 503 at poll, polled, 502, polled')

  const err = await chat.send({ n: 2 }).catch((e: unknown) => e)
  t.match(err, { name: 'ChatClientError', statusCode: 429, code: 'LONGPOLL_RATE_LIMITED', retryAfterMs: 2000, message: /retry in 2 s/ })
  await chat.close()
  t.equal(calls.at(-1)?.what, 'DELETE /chat/session', 'close() ended the session')
})

t.test('close() does not wait for a registration the server never answers', { timeout: 20_000 }, async (t) => {
  let registers = 0
  const silent = createServer((req) => { req.resume(); registers++ })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { silent.closeAllConnections(); silent.close(() => resolve()) }))
  const { port } = silent.address() as AddressInfo
  const chat = client(t, { url: `http://127.0.0.1:${port}/chat` })
  const ready = chat.ready().then(() => 'ready', (err: { code?: string }) => err.code)
  await waitFor(() => registers === 1, 'the registration to reach the server', 5000, 25)
  const started = Date.now()
  await chat.close()
  t.ok(Date.now() - started < 1000, 'close() resolved at once')
  t.equal(await ready, 'LONGPOLL_CLIENT_CLOSED')
  t.equal(chat.state, 'closed')
})

t.test('no unhandled rejection in the whole file', async (t) => {
  await sleep(50)
  t.same(unhandled, [])
})
