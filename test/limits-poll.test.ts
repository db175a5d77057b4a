/**
 * PROTOCOL.md, `GET /poll` and "Limits": the byte cap of a response (`maxPollBytes`, a single
 * larger message alone), one poll of a session served at a time (429 LONGPOLL_POLL_BUSY while a
 * response is being written, changing nothing), a client that never reads its response dropped
 * after `responseTimeout` with its memory freed, and `HEAD /poll` acknowledging, delivering
 * nothing, never held, never superseding. Over real HTTP on 127.0.0.1.
 */
import { connect, type Socket } from 'node:net'
import type { ServerResponse } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { assertError, poll, pollOk, register } from './helpers/http.js'
import { start, type TestServer } from './helpers/server.js'
import { sleep, waitFor, waitHeld } from './helpers/wait.js'

/** A GC function without --expose-gc (V8 exposes `gc` to contexts created after the flag is set), or null. */
function gcFunction (): (() => void) | null {
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    return typeof gc === 'function' ? gc as () => void : null
  } catch {
    return null
  }
}

const bytes = (messages: unknown[]): number => messages.reduce<number>((n, m) => n + Buffer.byteLength(JSON.stringify(m)), 0)

t.test('maxPollBytes: a response carries at most that many bytes of messages; a single larger message goes alone; the rest follows', async (t) => {
  const s = await start(t, { maxPollBytes: 3000, maxMessageBytes: 8000 })
  const a = await register(s)
  const sent: string[] = []
  for (let i = 0; i < 7; i++) sent.push((await s.app.longPoll.send(a.id, 'x'.repeat(900))).id) // ~1 KB each
  sent.push((await s.app.longPoll.send(a.id, 'y'.repeat(5000))).id) // alone over the cap
  sent.push((await s.app.longPoll.send(a.id, 'z')).id)
  const got: string[] = []
  const sizes: number[][] = []
  let cursor = a.cursor
  for (let i = 0; i < 10 && got.length < sent.length; i++) {
    const p = await pollOk(s, a.token, { cursor, wait: 0 })
    sizes.push([p.messages.length, bytes(p.messages)])
    got.push(...p.messages.map((m) => m.id))
    cursor = p.cursor
  }
  t.same(got, sent, 'every message, in order, once')
  t.ok(sizes.every(([n, b]) => n === 1 || b <= 3000), `each response is within 3000 bytes or one message (${JSON.stringify(sizes)})`)
  t.ok(sizes.some(([n, b]) => n === 1 && b > 3000), 'the larger message came alone')

  // The default: 256 KiB. 60 messages of 16 KiB queued come in responses of at most 256 KiB.
  const d = await start(t, {}, { listen: true })
  const b = await register(d)
  for (let i = 0; i < 60; i++) await d.app.longPoll.send(b.id, 'm'.repeat(16_000))
  const first = await poll(d, b.token, { cursor: b.cursor, wait: 0 })
  t.ok(first.text.length <= 262_144 + 1000, `the first response is ${first.text.length} bytes, within 256 KiB (and its frame)`)
  t.ok(first.body.messages.length > 1 && first.body.messages.length < 60, `${first.body.messages.length} of 60 messages`)
})

/** Opens a connection, sends a poll and never reads the answer (the socket is paused). */
function unreadPoll (s: TestServer, token: string, cursor: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(s.port as number, '127.0.0.1', () => {
      socket.pause()
      socket.write(`GET ${s.prefix}/poll?cursor=${cursor}&wait=0 HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\n\r\n`)
      resolve(socket)
    })
    socket.on('error', reject)
  })
}

t.test('one poll served at a time; a client that never reads is dropped after responseTimeout and its response freed', async (t) => {
  const RESPONSE_TIMEOUT = 600
  // A response of ~24 MiB, more than loopback's socket buffers take at once.
  const s = await start(t, { responseTimeout: RESPONSE_TIMEOUT, maxMessageBytes: 2 << 20, maxPollBytes: 32 << 20, rateLimit: false }, { listen: true })
  const responses: Array<WeakRef<ServerResponse>> = []
  let closedAt = 0
  s.app.server.on('request', (req, res: ServerResponse) => {
    if (req.url?.includes('/poll') !== true) return
    // The first poll is the unread one.
    if (responses.length === 0) res.on('close', () => { closedAt = Date.now() })
    responses.push(new WeakRef(res))
  })
  const a = await register(s)
  for (let i = 0; i < 12; i++) await s.app.longPoll.send(a.id, 'x'.repeat(2_000_000))
  const started = Date.now()
  const socket = await unreadPoll(s, a.token, a.cursor)
  t.teardown(() => { socket.destroy() })
  await waitFor(() => responses.length === 1, 'the server to take the poll')

  // Meanwhile another poll of the session is refused and changes nothing (it would acknowledge everything).
  const busy = await poll(s, a.token, { cursor: '12', wait: 0 })
  assertError(t, busy, 429, 'LONGPOLL_POLL_BUSY', 'a poll while the response is being written')
  t.equal(busy.headers['retry-after'], '1', 'retry-after: 1')
  const head = await s.request({ method: 'HEAD', path: `/poll?cursor=${a.cursor}`, token: a.token })
  t.equal(head.status, 200, 'HEAD is not a poll that is served: it is answered')

  await waitFor(() => closedAt > 0, 'the server to close the unread response', 10_000)
  const after = closedAt - started
  t.ok(after >= RESPONSE_TIMEOUT - 50, `the unread connection was closed by the server after responseTimeout (${after} ms)`)
  // The client sees it once it reads again.
  const seen = new Promise<string>((resolve) => {
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
    socket.on('close', () => resolve('closed'))
  })
  socket.resume()
  t.ok(['closed', 'ECONNRESET', 'EPIPE'].includes(await seen), 'the client finds its connection closed')

  // Nothing was acknowledged: the messages are all there, and the session is not busy any more.
  const again = await poll(s, a.token, { cursor: a.cursor, wait: 0 })
  t.equal(again.status, 200, 'the session polls again')
  t.equal(again.body.messages.length, 12, 'and gets all 12 messages')

  const gc = gcFunction()
  if (gc === null) {
    t.pass('SKIPPED: no gc function available in this Node: the check by weak reference is skipped')
    return
  }
  let alive = Infinity
  for (let i = 0; i < 5 && alive > 0; i++) {
    gc()
    await sleep(20)
    alive = responses.slice(0, 1).filter((r) => r.deref() !== undefined).length
  }
  t.equal(alive, 0, 'the dropped response (and its 24 MiB body) is no longer referenced')
})

t.test('HEAD /poll: acknowledges up to the cursor, delivers nothing, is never held and never supersedes', async (t) => {
  const s = await start(t, { pollTimeout: 10_000 }, { listen: true })
  const a = await register(s)
  const m1 = await s.app.longPoll.send(a.id, 1)
  const m2 = await s.app.longPoll.send(a.id, 2)
  const p = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(p.messages.map((m) => m.id), [m1.id, m2.id])
  const m3 = await s.app.longPoll.send(a.id, 3)
  const delivered = (await s.app.longPoll.stats()).delivered

  const head = await s.request({ method: 'HEAD', path: `/poll?cursor=${p.cursor}`, token: a.token })
  t.equal(head.status, 200)
  t.equal(head.text, '', 'no body')
  t.match(head.headers['cache-control'], /no-store/)
  t.equal((await s.app.longPoll.stats()).delivered, delivered, 'nothing was delivered')
  const next = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(next.messages.map((m) => m.id), [m3.id], 'the HEAD acknowledged m1 and m2: an old cursor gets only m3')

  // Never held, even with nothing to read; never supersedes a held poll.
  const held = poll(s, a.token, { cursor: next.cursor })
  await waitHeld(s, 1)
  const started = Date.now()
  const quick = await s.request({ method: 'HEAD', path: `/poll?cursor=${next.cursor}&wait=5000`, token: a.token })
  t.equal(quick.status, 200)
  t.ok(Date.now() - started < 2000, 'answered at once')
  t.equal((await s.app.longPoll.stats()).heldPolls, 1, 'the held GET is still held')
  const m4 = await s.app.longPoll.send(a.id, 4)
  t.same((await held).body.messages.map((m: { id: string }) => m.id), [m4.id], 'and gets the next message')

  const noBody = async (res: { status: number, text: string }, status: number, what: string): Promise<void> => {
    t.equal(res.status, status, what)
    t.equal(res.text, '', `${what}: HEAD answers have no body`)
  }
  await noBody(await s.request({ method: 'HEAD', path: '/poll' }), 401, 'no token')
  await noBody(await s.request({ method: 'HEAD', path: '/poll?cursor=x', token: a.token }), 400, 'bad cursor')
  await noBody(await s.request({ method: 'HEAD', path: '/poll?cursor=999', token: a.token }), 400, 'cursor ahead')
})
