/**
 * PROTOCOL.md, "Mailbox" and "Session expiry" in real time with small TTLs: messageTtl,
 * maxMailboxMessages overflow (both counted in `missed`, never a delivered message), sessionTtl,
 * the held-poll exemption, and what expiry announces (`leave`, `onSessionEnd`).
 */
import t from 'tap'
import type { Message, SessionEndInfo } from '../types/index.js'
import { register, poll, pollOk, send, members, assertError } from './helpers/http.js'
import { start } from './helpers/server.js'
import { sleep, waitFor } from './helpers/wait.js'

t.test('messageTtl: an undelivered message that expires is counted in missed, once', async (t) => {
  const s = await start(t, { pollTimeout: 5000, messageTtl: 200 }, { listen: true })
  const a = await register(s)
  t.equal(a.messageTtlMs, 200, 'register announces messageTtlMs')
  await s.app.longPoll.send(a.id, 'too late')
  await sleep(400)
  // Held polls are answered at once when missed > 0 (the hold time is 5 s).
  const p = await poll(s, a.token, { cursor: a.cursor })
  t.equal(p.status, 200)
  t.ok(p.ms < 2500, `answered at once because missed > 0 (${p.ms} ms)`)
  t.same(p.body.messages, [], 'the expired message is gone')
  t.equal(p.body.missed, 1, 'and counted in missed')
  const p2 = await pollOk(s, a.token, { cursor: p.body.cursor, wait: 0 })
  t.equal(p2.missed, 0, 'missed counts since the previous response only')
  t.same(p2.messages, [])
  const stats = await s.app.longPoll.stats()
  t.equal(stats.dropped, 1, 'stats().dropped counts it')
  t.equal(stats.queued, 0, 'nothing left queued')
})

t.test('messageTtl: a message younger than messageTtl is kept, whether or not a poll waited', async (t) => {
  const s = await start(t, { pollTimeout: 5000, messageTtl: 1500 })
  const a = await register(s)
  const m = await s.app.longPoll.send(a.id, 'in time')
  await sleep(300)
  const p = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(p.messages.map((x) => x.id), [m.id])
  t.equal(p.missed, 0)
})

t.test('messageTtl: a delivered but unacknowledged message that expires is not counted in missed', async (t) => {
  const s = await start(t, { pollTimeout: 5000, messageTtl: 200 })
  const a = await register(s)
  const m1 = await s.app.longPoll.send(a.id, 'delivered')
  const p1 = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(p1.messages.map((x) => x.id), [m1.id])
  await s.app.longPoll.send(a.id, 'never delivered')
  await sleep(400)
  // Poll again with the old cursor: both expired; only the undelivered one is missed.
  const p2 = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(p2.messages, [], 'both expired')
  t.equal(p2.missed, 1, 'only the undelivered message is counted')
  t.equal((await s.app.longPoll.stats()).dropped, 1)
})

t.test('maxMailboxMessages: the oldest are dropped on overflow, and counted in missed', async (t) => {
  const s = await start(t, { pollTimeout: 5000, maxMailboxMessages: 3 })
  const a = await register(s)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await s.app.longPoll.send(a.id, i)).id)
  const p = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(p.messages.map((x) => x.id), ids.slice(2), 'the newest three are kept')
  t.equal(p.missed, 2, 'the two dropped are counted')
  t.equal((await s.app.longPoll.stats()).dropped, 2)

  // Delivered-but-unacknowledged messages count toward the limit, but dropping them is not "missed".
  const q = await pollOk(s, a.token, { cursor: p.cursor, wait: 0 })
  t.same(q.messages, [])
  t.equal(q.missed, 0)
  const m6 = await s.app.longPoll.send(a.id, 6)
  const r = await pollOk(s, a.token, { cursor: q.cursor, wait: 0 })
  t.same(r.messages.map((x) => x.id), [m6.id], 'delivered, not acknowledged yet')
  const later: string[] = []
  for (let i = 0; i < 3; i++) later.push((await s.app.longPoll.send(a.id, 7 + i)).id)
  // The mailbox holds m6 + three new ones = 4 > 3: m6 (delivered) is dropped.
  const u = await pollOk(s, a.token, { cursor: q.cursor, wait: 0 })
  t.same(u.messages.map((x) => x.id), later, 'the oldest (delivered) was dropped')
  t.equal(u.missed, 0, 'a delivered message dropped on overflow is not missed')
  t.equal((await s.app.longPoll.stats()).dropped, 2, 'nor counted as dropped')
})

t.test('maxMailboxMessages: a held poll is answered by an overflow', async (t) => {
  const s = await start(t, { pollTimeout: 5000, maxMailboxMessages: 2, rateLimit: false }, { listen: true })
  const a = await register(s)
  const b = await register(s)
  const ids: string[] = []
  for (let i = 0; i < 4; i++) ids.push((await send(s, b.token, { data: i, to: a.id })).body.id)
  const p = await pollOk(s, a.token, { cursor: a.cursor })
  t.same(p.messages.map((x) => x.id), ids.slice(2))
  t.equal(p.missed, 2)
})

t.test('sessionTtl: an idle session expires and its token stops working; an active one lives on', async (t) => {
  // Margins are wide (sessionTtl 1 s, a request every 100 ms) so that a loaded machine does not
  // make the active session look idle.
  const s = await start(t, { pollTimeout: 5000, sessionTtl: 1000, sweepInterval: 50, rateLimit: false })
  const idle = await register(s)
  const busy = await register(s)
  t.equal(idle.sessionTtlMs, 1000, 'register announces sessionTtlMs')
  await s.app.longPoll.send(idle.id, 'never read')
  const until = Date.now() + 2000
  let alive = 0
  let polls = 0
  while (Date.now() < until) {
    polls++
    if ((await poll(s, busy.token, { cursor: busy.cursor, wait: 0 })).status === 200) alive++
    await sleep(100)
  }
  t.equal(alive, polls, `the active session stayed alive (${alive}/${polls} polls answered 200)`)
  assertError(t, await poll(s, idle.token, { wait: 0 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'idle session: poll')
  assertError(t, await send(s, idle.token, { data: 1 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'idle session: send')
  t.equal((await poll(s, busy.token, { wait: 0 })).status, 200, 'the active session is alive')
  const all = await s.app.longPoll.members()
  t.same(all.map((m) => m.id), [busy.id], 'only the active session is listed')
  t.equal((await s.app.longPoll.stats()).sessions, 1)
  t.equal((await s.app.longPoll.stats()).queued, 0, 'the expired mailbox was freed')
  await t.rejects(s.app.longPoll.send(idle.id, 'x'), { code: 'LONGPOLL_NO_SUCH_SESSION' }, 'the expired id is unknown')
  assertError(t, await send(s, busy.token, { data: 1, to: idle.id }), 404, 'LONGPOLL_NO_SUCH_SESSION', 'to an expired session')
})

t.test('expiry: members get `leave` with the profile, the session leaves its rooms, onSessionEnd(expired) once', async (t) => {
  const ended: SessionEndInfo[] = []
  const s = await start(t, {
    pollTimeout: 5000,
    sessionTtl: 800,
    sweepInterval: 50,
    onSessionEnd: (info) => { ended.push(info) }
  })
  const a = await register(s, { rooms: ['lobby', 'side'], profile: { name: 'Ann' } })
  const b = await register(s, { rooms: ['lobby'] })
  const got: Message[] = []
  let cursor = b.cursor
  await waitFor(async () => {
    const p = await pollOk(s, b.token, { cursor, wait: 0 })
    cursor = p.cursor
    got.push(...p.messages)
    await sleep(50)
    return got.some((m) => m.type === 'leave')
  }, 'a leave message', 6000)
  t.same(got.map((m) => [m.type, m.from, m.room, m.data]), [
    ['join', b.id, 'lobby', null],
    ['leave', a.id, 'lobby', { name: 'Ann' }]
  ], 'b sees its own join, then a leave of the expired session with its profile')
  const leaveMsg = got[1]
  t.equal(leaveMsg.to, null)
  t.equal(typeof leaveMsg.id, 'string')
  t.equal(typeof leaveMsg.ts, 'number')

  const list = await members(s, b.token, 'lobby')
  t.same(list.body.members.map((m: { id: string }) => m.id), [b.id], 'the expired session left the room')
  t.same(await s.app.longPoll.members('side'), [], 'and its other rooms')

  await sleep(200)
  t.equal(ended.length, 1, 'onSessionEnd called once')
  t.match(ended[0], { id: a.id, reason: 'expired', profile: { name: 'Ann' } })
  t.same([...ended[0].rooms].sort(), ['lobby', 'side'])
  const more = await pollOk(s, b.token, { cursor, wait: 0 })
  t.same(more.messages, [], 'one leave only')
})
