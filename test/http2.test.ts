/**
 * The plugin and the client over HTTP/2 (Fastify's `http2: true` with TLS), real sockets on
 * 127.0.0.1: the client's polls and requests share one connection; a poll whose stream is
 * cancelled while it is authenticated is dropped without an error; shutdown answers held polls
 * with 503 and no connection-specific header (forbidden in HTTP/2), while HTTP/1.1 still gets
 * `connection: close`.
 */
import t, { type Test } from 'tap'
import http2 from 'node:http2'
import { X509Certificate } from 'node:crypto'
import { createChatClient } from '../lib/client.js'
import { collect, startServer, type Num } from './helpers/client.js'
import { sleep as delay } from './helpers/wait.js'
import { http2Fetch, startHttp2, testCertificate } from './helpers/http2.js'

/** Process warnings seen during a test (Node warns when an HTTP/2 response is given a connection header). */
function warnings (t: Test): string[] {
  const seen: string[] = []
  const listener = (w: Error): void => { seen.push(`${w.name}: ${w.message}`) }
  process.on('warning', listener)
  t.teardown(() => { process.off('warning', listener) })
  return seen
}

function request (session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ status: number, headers: http2.IncomingHttpHeaders, body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers)
    let head: http2.IncomingHttpHeaders = {}
    let text = ''
    stream.setEncoding('utf8')
    stream.on('response', (h) => { head = h })
    stream.on('data', (chunk: string) => { text += chunk })
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: text }))
    stream.on('error', reject)
    stream.end(body)
  })
}

t.test('the example certificate is a valid self-signed one for localhost', async (t) => {
  const x509 = new X509Certificate(testCertificate().cert)
  t.ok(x509.verify(x509.publicKey), 'self-signed')
  t.equal(x509.checkHost('localhost'), 'localhost')
  t.equal(x509.checkIP('127.0.0.1'), '127.0.0.1')
  t.ok(Date.parse(x509.validTo) > Date.now(), 'valid now')
})

t.test('the client over HTTP/2: every request of two clients on one connection each', async (t) => {
  const seen = warnings(t)
  const server = await startHttp2(t)
  const { cert } = testCertificate()
  const url = `${server.origin}/chat`
  const ada = createChatClient<Num>({ url, fetch: http2Fetch(t, server.origin, cert), rooms: ['lobby'] })
  const bob = createChatClient<Num>({ url, fetch: http2Fetch(t, server.origin, cert), rooms: ['lobby'] })
  t.teardown(() => Promise.all([ada.close(), bob.close()]))
  await Promise.all([ada.ready(), bob.ready()])
  const got = collect(bob, 3)
  for (let n = 1; n <= 3; n++) await ada.send({ n }, { room: 'lobby' })
  t.same((await got).map(m => [m.from, m.data.n]), [[ada.id, 1], [ada.id, 2], [ada.id, 3]], 'sent, held poll woken, in order')
  t.same((await bob.members('lobby')).map(m => m.id).sort(), [ada.id, bob.id].sort())
  await bob.join('den')
  t.equal(server.sessions(), 2, 'one HTTP/2 connection per client, polls and requests multiplexed on it')
  await Promise.all([ada.close(), bob.close()])
  t.equal((await server.app.longPoll.stats()).sessions, 0, 'DELETE /session over HTTP/2')
  t.same(seen, [], 'no warnings')
})

t.test('HTTP/2: a poll cancelled while it is authenticated is dropped, not answered with an error', async (t) => {
  const errors: string[] = []
  const server = await startHttp2(t, {}, (app) => {
    // Authentication takes a while here, so that the client can cancel the stream meanwhile.
    app.addHook('onRequest', async (request) => {
      if (request.url.includes('slow=1')) await delay(150)
    })
    app.addHook('onError', async (_request, _reply, error) => { errors.push(error.message) })
  })
  const session = http2.connect(server.origin, { ca: testCertificate().cert })
  t.teardown(() => session.close())
  const reg = await request(session, { ':method': 'POST', ':path': '/chat/register' })
  const { token } = JSON.parse(reg.body) as { token: string }
  const stream = session.request({ ':method': 'GET', ':path': '/chat/poll?cursor=0&slow=1', authorization: `Bearer ${token}` })
  stream.on('error', () => {})
  stream.end()
  await delay(30)
  stream.close(http2.constants.NGHTTP2_CANCEL)
  await delay(300)
  t.same(errors, [], 'no error (it was a TypeError on Http2ServerResponse.socket)')
  t.equal((await server.app.longPoll.stats()).heldPolls, 0, 'nothing held for the gone client')

  // The session still works: a poll after it is held and woken.
  const poll = request(session, { ':method': 'GET', ':path': '/chat/poll?cursor=0', authorization: `Bearer ${token}` })
  await delay(50)
  await server.app.longPoll.broadcast({ n: 1 })
  const res = await poll
  t.equal(res.status, 200)
  t.match(JSON.parse(res.body), { messages: [{ data: { n: 1 } }] })
})

t.test('shutdown: held polls get 503 with retry-after; connection: close on HTTP/1.1 only', async (t) => {
  const seen = warnings(t)
  const server = await startHttp2(t)
  const session = http2.connect(server.origin, { ca: testCertificate().cert })
  session.on('error', () => {})
  t.teardown(() => session.close())
  const reg = await request(session, { ':method': 'POST', ':path': '/chat/register' })
  const { token } = JSON.parse(reg.body) as { token: string }
  await request(session, { ':method': 'GET', ':path': '/chat/poll?cursor=0&wait=0', authorization: `Bearer ${token}` })
  const held = request(session, { ':method': 'GET', ':path': '/chat/poll?cursor=0', authorization: `Bearer ${token}` })
  for (let i = 0; i < 100 && (await server.app.longPoll.stats()).heldPolls === 0; i++) await delay(10)
  const closed = server.app.close()
  const res = await held
  await closed
  t.equal(res.status, 503)
  t.equal(res.headers['retry-after'], '1')
  t.equal(res.headers.connection, undefined, 'no connection header on HTTP/2')
  t.match(JSON.parse(res.body), { code: 'LONGPOLL_SHUTTING_DOWN' })
  t.same(seen, [], 'no warning about a connection header')

  const h1 = await startServer(t)
  const regRes = await fetch(`${h1.url}/register`, { method: 'POST' })
  const { token: t1 } = await regRes.json() as { token: string }
  const held1 = fetch(`${h1.url}/poll?cursor=0`, { headers: { authorization: `Bearer ${t1}` } })
  for (let i = 0; i < 100 && (await h1.app.longPoll.stats()).heldPolls === 0; i++) await delay(10)
  const closing = h1.app.close()
  const res1 = await held1
  await closing
  t.equal(res1.status, 503)
  t.equal(res1.headers.get('connection'), 'close', 'HTTP/1.1 still closes the connection')
})
