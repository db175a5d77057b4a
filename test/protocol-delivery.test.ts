/**
 * PROTOCOL.md, "Mailbox", "Cursor", `GET /poll` and "Message": the seed scenario, lost
 * responses, and a lag fuzz of many sessions polling with random pauses (real HTTP).
 */
import t from 'tap'
import type { Message } from '../types/index.js'
import { register, poll, pollOk, send } from './helpers/http.js'
import { prng } from './helpers/random.js'
import { start } from './helpers/server.js'
import { sleep, waitHeld } from './helpers/wait.js'

t.test('seed scenario: a held poll is answered by a message; the next one is queued and returned at once', async (t) => {
  const s = await start(t, { pollTimeout: 10_000, rateLimit: false }, { listen: true })
  const alice = await register(s, { profile: { name: 'Alice' } })
  const bob = await register(s, { profile: { name: 'Bob' } })

  // Alice holds a poll.
  const held = pollOk(s, alice.token, { cursor: alice.cursor })
  await waitHeld(s, 1)

  // "Hello, world!" arrives and answers it.
  const publishedAt = Date.now()
  const hello = await send(s, bob.token, { data: 'Hello, world!', to: alice.id })
  t.equal(hello.status, 202)
  const first = await held
  const answeredAfter = Date.now() - publishedAt
  t.ok(answeredAfter < 2000, `the held poll is answered on publish, not at the hold time (${answeredAfter} ms)`)
  t.equal(first.messages.length, 1)
  t.equal(first.missed, 0)
  const m = first.messages[0]
  t.same(m, { id: hello.body.id, type: 'message', from: bob.id, room: null, to: alice.id, data: 'Hello, world!', ts: hello.body.ts })
  t.equal(typeof first.cursor, 'string')

  // "Salve, munde!" arrives before Alice polls again.
  const salve = await send(s, bob.token, { data: 'Salve, munde!', to: alice.id })
  t.equal(salve.status, 202)
  t.equal((await s.app.longPoll.stats()).heldPolls, 0, 'no poll is held while Alice is away')

  // Her next poll returns it immediately (the hold time is 10 s).
  const started = Date.now()
  const second = await pollOk(s, alice.token, { cursor: first.cursor })
  t.ok(Date.now() - started < 2000, 'answered at once')
  t.same(second.messages.map((x) => x.data), ['Salve, munde!'], 'only the new message, no repeat')
  t.equal(second.messages[0].id, salve.body.id)
  t.equal(second.missed, 0)
  t.not(second.messages[0].id, m.id, 'ids are unique')
})

t.test('a message published while no poll waits stays in the mailbox until acknowledged', async (t) => {
  const s = await start(t, { pollTimeout: 5000 })
  const a = await register(s)
  const r = await s.app.longPoll.broadcast({ n: 1 })
  t.equal(r.recipients, 1)
  await sleep(50)
  const p1 = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(p1.messages.map((x) => x.data), [{ n: 1 }])
  t.same(p1.messages[0], { id: r.id, type: 'message', from: null, room: null, to: null, data: { n: 1 }, ts: r.ts })
})

t.test('poll response shape and message shape', async (t) => {
  const s = await start(t, { pollTimeout: 5000 })
  const a = await register(s)
  const b = await register(s)
  const before = Date.now()
  const sent = await send(s, a.token, { data: { text: 'hi', list: [1, 2, { x: null }], flag: true } })
  const after = Date.now()
  t.equal(sent.status, 202)
  t.same(Object.keys(sent.body).sort(), ['id', 'ts'], '202 body is { id, ts }')
  t.equal(typeof sent.body.id, 'string')
  t.ok(sent.body.id.length > 0)
  t.ok(Number.isInteger(sent.body.ts) && sent.body.ts >= before - 5 && sent.body.ts <= after + 5, 'ts is epoch ms')
  for (const who of [a, b]) {
    const res = await poll(s, who.token, { cursor: who.cursor, wait: 0 })
    t.equal(res.status, 200)
    t.match(res.headers['content-type'], /application\/json/)
    t.match(res.headers['cache-control'], /no-store/)
    t.same(Object.keys(res.body).sort(), ['cursor', 'messages', 'missed'])
    t.equal(typeof res.body.cursor, 'string')
    t.equal(res.body.missed, 0)
    t.same(res.body.messages, [{ id: sent.body.id, type: 'message', from: a.id, room: null, to: null, data: { text: 'hi', list: [1, 2, { x: null }], flag: true }, ts: sent.body.ts }])
  }
})

t.test('lost response: the old cursor returns the same messages again; the new one repeats nothing', async (t) => {
  const s = await start(t, { pollTimeout: 5000 })
  const a = await register(s)
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push((await s.app.longPoll.broadcast({ i })).id)

  const first = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(first.messages.map((m) => m.id), ids)

  // The response "was lost": poll again with the old cursor, twice.
  const again = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(again.messages, first.messages, 'same messages again')
  t.equal(again.missed, 0)
  const third = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(third.messages.map((m) => m.id), ids, 'and again')

  // A new message joins the unacknowledged ones.
  const m4 = await s.app.longPoll.broadcast({ i: 3 })
  const fourth = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(fourth.messages.map((m) => m.id), [...ids, m4.id], 'unacknowledged messages then the new one')

  // With the new cursor: no repeats.
  const next = await pollOk(s, a.token, { cursor: fourth.cursor, wait: 0 })
  t.same(next.messages, [], 'nothing repeated')
  t.equal(next.missed, 0)
  const m5 = await s.app.longPoll.broadcast({ i: 4 })
  const last = await pollOk(s, a.token, { cursor: next.cursor, wait: 0 })
  t.same(last.messages.map((m) => m.id), [m5.id], 'only the message after the cursor')
})

t.test('a message that answered a held poll stays in the mailbox until a later cursor acknowledges it', async (t) => {
  const s = await start(t, { pollTimeout: 10_000 }, { listen: true })
  const a = await register(s)
  const held = pollOk(s, a.token, { cursor: a.cursor })
  await waitHeld(s, 1)
  const m = await s.app.longPoll.send(a.id, 'while waiting')
  const got = await held
  t.same(got.messages.map((x) => x.id), [m.id])
  // The answer "was lost": the old cursor returns it again, at once.
  const again = await pollOk(s, a.token, { cursor: a.cursor })
  t.same(again.messages.map((x) => x.id), [m.id], 'delivered again with the old cursor')
  t.equal((await s.app.longPoll.stats()).queued, 1, 'still queued')
  const acked = await pollOk(s, a.token, { cursor: again.cursor, wait: 0 })
  t.same(acked.messages, [])
  t.equal((await s.app.longPoll.stats()).queued, 0, 'freed once acknowledged')
})

t.test('maxMailboxMessages defaults to 1000; a long backlog comes in order over several polls', async (t) => {
  const s = await start(t, {})
  const a = await register(s)
  const ids: string[] = []
  for (let i = 0; i < 1001; i++) ids.push((await s.app.longPoll.send(a.id, i)).id)
  const got: string[] = []
  let missed = 0
  let cursor = a.cursor
  for (let i = 0; i < 20 && got.length < 1000; i++) {
    const p = await pollOk(s, a.token, { cursor, wait: 0 })
    cursor = p.cursor
    missed += p.missed
    got.push(...p.messages.map((m) => m.id))
  }
  t.equal(missed, 1, 'the oldest was dropped and counted')
  t.same(got, ids.slice(1), 'the other 1000 arrive once, in order')
  t.same((await pollOk(s, a.token, { cursor, wait: 0 })).messages, [], 'and nothing more')
})

t.test('an aborted held poll releases its slot, and a message published after it is not lost', async (t) => {
  const s = await start(t, { pollTimeout: 5000 }, { listen: true })
  const a = await register(s)
  const ac = new AbortController()
  const held = poll(s, a.token, { cursor: a.cursor, signal: ac.signal })
  await waitHeld(s, 1)
  ac.abort()
  await t.rejects(held, 'the client gave up on the poll')
  await waitHeld(s, 0)
  const m = await s.app.longPoll.broadcast('after the abort')
  const p = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(p.messages.map((x) => x.id), [m.id])
})

t.test('lag fuzz: 30 sessions polling with random pauses each get every message exactly once, in order', async (t) => {
  const SESSIONS = 30
  const MESSAGES = 60
  const s = await start(t, { pollTimeout: 400, messageTtl: 5000, rateLimit: false }, { listen: true })
  const rnd = prng(0xC0FFEE)
  const sessions = await Promise.all(Array.from({ length: SESSIONS }, () => register(s)))
  const sender = sessions[0]

  const deadline = Date.now() + 15_000
  const published: string[] = []

  const publisher = (async () => {
    for (let i = 0; i < MESSAGES; i++) {
      if (i % 2 === 0) {
        const r = await send(s, sender.token, { data: { seq: i } })
        if (r.status !== 202) throw new Error(`send ${i}: ${r.status} ${r.text}`)
        published.push(r.body.id)
      } else {
        published.push((await s.app.longPoll.broadcast({ seq: i })).id)
      }
      await sleep(Math.floor(rnd() * 15))
    }
  })()

  const received: Message[][] = sessions.map(() => [])
  const missed: number[] = sessions.map(() => 0)
  const pauses = sessions.map(() => Array.from({ length: 200 }, () => Math.floor(rnd() * 120)))
  const consumers = sessions.map(async (sess, k) => {
    let cursor = sess.cursor
    let n = 0
    while (Date.now() < deadline) {
      const p = await pollOk(s, sess.token, { cursor })
      cursor = p.cursor
      missed[k] += p.missed
      received[k].push(...p.messages)
      if (received[k].length >= MESSAGES) return
      await sleep(pauses[k][n++ % pauses[k].length])
    }
  })

  await publisher
  await Promise.all(consumers) // each stops once it has every message, or at the deadline

  t.equal(published.length, MESSAGES)
  t.equal(new Set(published).size, MESSAGES, 'message ids are unique')
  let perfect = 0
  for (let k = 0; k < SESSIONS; k++) {
    const ids = received[k].map((m) => m.id)
    const ok = missed[k] === 0 && ids.length === MESSAGES && ids.every((id, i) => id === published[i])
    if (ok) perfect++
    else t.fail(`session ${k}: missed ${missed[k]}, received ${ids.length}/${MESSAGES}, in order: ${ids.every((id, i) => id === published[i])}`)
  }
  t.equal(perfect, SESSIONS, 'every session received every message exactly once, in order')
  t.same(received[1].map((m) => (m.data as { seq: number }).seq), Array.from({ length: MESSAGES }, (_, i) => i))
})
