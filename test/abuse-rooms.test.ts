/**
 * Abuse scenarios of issue 13, rooms (default options, 127.0.0.1): one session toggles
 * join/leave 200 times to flood a room's members with notices (and push their real messages
 * out of small mailboxes); one session asks for the member list of a 100-member room 40 times
 * in parallel. The toggles stop at the joins limit with 429, the members keep every real
 * message; member lists come in bounded pages and stop at the pages limit.
 */
import t from 'tap'
import type { Message } from '../types/index.js'
import { assertError, join, leave, members, pollOk, register, type Reply } from './helpers/http.js'
import { start } from './helpers/server.js'

t.test('200 join/leave toggles: 20 accepted, the rest 429; the room\'s members keep their real messages', async (t) => {
  // A small mailbox: 200 notices (what the toggles made before the joins limit) would push everything out of it.
  const s = await start(t, { maxMailboxMessages: 40 }, { listen: true })
  const member = await register(s, { rooms: ['r'] })
  const speaker = await register(s, { rooms: ['r'] })
  const toggler = await register(s)
  const real: string[] = []
  for (let i = 0; i < 5; i++) real.push((await s.app.longPoll.broadcast({ real: i }, { room: 'r' })).id)

  const statuses: number[] = []
  const started = Date.now()
  for (let i = 0; i < 200 && Date.now() - started < 20_000; i++) {
    const res: Reply = i % 2 === 0 ? await join(s, toggler.token, 'r') : await leave(s, toggler.token, 'r')
    statuses.push(res.status)
  }
  t.equal(statuses.length, 200)
  t.equal(statuses.filter((x) => x === 204).length, 20, '20 toggles accepted')
  t.equal(statuses.filter((x) => x === 429).length, 180, '180 refused with 429')
  for (let i = 0; i < 5; i++) real.push((await s.app.longPoll.broadcast({ real: 5 + i }, { room: 'r' })).id)

  const p = await pollOk(s, member.token, { cursor: member.cursor, wait: 0 })
  const notices = p.messages.filter((m: Message) => m.from === toggler.id)
  t.equal(notices.length, 20, 'the member got the 20 accepted notices, no more')
  t.same(p.messages.filter((m: Message) => m.type === 'message').map((m) => m.id), real, 'and every real message')
  t.equal(p.missed, 0, 'none pushed out of its 40-message mailbox')
  t.equal((await s.request({ method: 'POST', path: '/messages', token: speaker.token, json: { room: 'r', data: 'still talking' } })).status, 202, 'the room works on')
})

t.test('member lists of a 100-member room, 40 asked at once by one session: pages of at most 100, 30 per 10 s', async (t) => {
  const s = await start(t, {})
  // 100 members, each from its own address (the register limit is per address).
  const tokens: string[] = []
  for (let i = 0; i < 100; i++) {
    const res = await s.app.inject({ method: 'POST', url: '/chat/register', payload: { rooms: ['big'], profile: { name: 'n'.repeat(200) } }, remoteAddress: `198.51.100.${i + 1}` })
    t.equal(res.statusCode, 201)
    tokens.push(res.json().token)
  }
  const asker = tokens[0]
  const replies = await Promise.all(Array.from({ length: 40 }, () => members(s, asker, 'big')))
  const ok = replies.filter((r) => r.status === 200)
  t.equal(ok.length, 30, '30 pages served')
  t.equal(replies.filter((r) => r.status === 429).length, 10, 'the other 10: 429')
  assertError(t, replies.find((r) => r.status === 429) as Reply, 429, 'LONGPOLL_RATE_LIMITED', 'a refused page')
  t.ok(ok.every((r) => r.body.members.length <= 100), 'each page has at most 100 members')
  const biggest = Math.max(...ok.map((r) => r.text.length))
  t.ok(biggest < 40_000, `the largest answer is ${biggest} bytes, bounded by the page`)
  t.equal((await members(s, tokens[1], 'big')).status, 200, 'another member is not limited by the asker')
})
