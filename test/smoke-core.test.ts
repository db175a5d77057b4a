import t from 'tap'
import Fastify from 'fastify'
import { longPollChat } from '../lib/index.js'
import { waitFor } from './helpers/wait.js'

t.test('register, hold a poll, broadcast answers it, next poll gets the later message', async (t) => {
  const app = Fastify()
  await app.register(longPollChat, { prefix: '/chat', pollTimeout: 3000 })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/chat`
  const reg = await (await fetch(`${base}/register`, { method: 'POST' })).json() as { token: string, cursor: string, id: string }
  t.match(reg, { id: String, token: String, cursor: '0', pollTimeoutMs: 3000 })
  const auth = { authorization: `Bearer ${reg.token}` }
  const held = fetch(`${base}/poll?cursor=${reg.cursor}`, { headers: auth })
  t.ok(await waitFor(async () => (await app.longPoll.stats()).heldPolls === 1, 'the poll to be held'), 'the poll is held')
  const started = Date.now()
  const sent = await app.longPoll.broadcast({ text: 'Hello, world!' })
  t.equal(sent.recipients, 1)
  const res = await held
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'no-store')
  const body = await res.json() as { cursor: string, messages: Array<{ data: unknown, from: null }>, missed: number }
  t.ok(Date.now() - started < 1000)
  t.same(body.messages.map((m) => m.data), [{ text: 'Hello, world!' }])
  t.equal(body.missed, 0)
  await app.longPoll.broadcast({ text: 'Salve, munde!' })
  const next = await (await fetch(`${base}/poll?cursor=${body.cursor}`, { headers: auth })).json() as typeof body
  t.same(next.messages.map((m) => m.data), [{ text: 'Salve, munde!' }])
  const again = await (await fetch(`${base}/poll?cursor=${body.cursor}`, { headers: auth })).json() as typeof body
  t.same(again.messages.map((m) => m.data), [{ text: 'Salve, munde!' }], 'old cursor: same messages again')
  // Protocol v2: fields other than data, room, to and toUser are refused (v1: refused or ignored).
  const forged = await fetch(`${base}/messages`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ data: 'x', from: 'forged' }) })
  t.equal(forged.status, 400, 'a forged from is refused')
  const s = await fetch(`${base}/messages`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ data: 'x' }) })
  t.equal(s.status, 202)
  const mine = await (await fetch(`${base}/poll?cursor=${again.cursor}`, { headers: auth })).json() as { messages: Array<{ from: string }> }
  t.equal(mine.messages[0].from, reg.id)
})

t.test('close answers held polls with 503', async (t) => {
  const app = Fastify()
  await app.register(longPollChat, { prefix: '/chat' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/chat`
  const reg = await (await fetch(`${base}/register`, { method: 'POST' })).json() as { token: string }
  const held = fetch(`${base}/poll`, { headers: { authorization: `Bearer ${reg.token}` } })
  await waitFor(async () => (await app.longPoll.stats()).heldPolls === 1, 'the poll to be held')
  const started = Date.now()
  await app.close()
  const res = await held
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '1')
  t.match(await res.json(), { code: 'LONGPOLL_SHUTTING_DOWN' })
  t.ok(Date.now() - started < 2000)
})
