/**
 * Abuse a public deployment sees (DESIGN.md: "Everything a client can make the server hold is
 * bounded"): held polls that would hang on forever, bursts of polls of one session, room
 * collectors, oversized and deeply nested bodies, token guessing, junk cursors and sends to
 * unknown sessions. Each is refused or bounded, answered with a protocol error (never a 500 or
 * a hang), leaves no state behind, and the server keeps serving.
 */
import t from 'tap'
import { assertError, httpCall, join, members, poll, pollOk, register, send, type Reply } from './helpers/http.js'
import { start } from './helpers/server.js'
import { waitHeld } from './helpers/wait.js'

t.test('slowloris-ish held polls are bounded by pollTimeout, whatever wait they ask for', async (t) => {
  const N = 100
  const POLL_TIMEOUT = 300
  // 100 clients from one address on purpose: no register limit.
  const s = await start(t, { pollTimeout: POLL_TIMEOUT, registerRateLimit: false }, { listen: true })
  const sessions = await Promise.all(Array.from({ length: N }, () => register(s)))
  const waits = [undefined, '25000', String(2 ** 31), '999999999999999', String(Number.MAX_SAFE_INTEGER), '1000000000000000000000']
  const started = Date.now()
  const replies = await Promise.all(sessions.map((x, i) => poll(s, x.token, { cursor: x.cursor, wait: waits[i % waits.length] })))
  const elapsed = Date.now() - started
  t.same([...new Set(replies.map((r) => r.status))], [200], `all ${N} held polls answered 200 (waits ${waits.map(String).join(', ')})`)
  t.ok(replies.every((r) => r.body.messages.length === 0 && r.body.missed === 0), 'with no messages')
  t.ok(replies.every((r) => r.ms >= POLL_TIMEOUT - 50), 'each was held (none answered early)')
  t.ok(elapsed < 10_000, `and all were released by the ${POLL_TIMEOUT} ms hold cap, not by their wait (${elapsed} ms for all)`)
  t.equal((await s.app.longPoll.stats()).heldPolls, 0, 'nothing stays held')
})

t.test('a burst of 50 concurrent polls of one session: at most one stays held, the others are 409', async (t) => {
  const BURST = 50
  const s = await start(t, { pollTimeout: 10_000 }, { listen: true })
  const a = await register(s)
  const other = await register(s)
  const replies: Array<Promise<Reply>> = []
  for (let i = 0; i < BURST; i++) replies.push(poll(s, a.token, { cursor: a.cursor }))
  const otherHeld = poll(s, other.token, { cursor: other.cursor })
  await waitHeld(s, 2)
  // Every superseded poll is answered at once; the last one keeps the session's only slot.
  const m = await s.app.longPoll.broadcast('wake')
  const all = await Promise.all(replies)
  const ok = all.filter((r) => r.status === 200)
  const superseded = all.filter((r) => r.status === 409)
  t.equal(ok.length, 1, 'exactly one poll of the burst was still held and got the message')
  t.same(ok[0].body.messages.map((x: { id: string }) => x.id), [m.id], 'the broadcast')
  t.equal(superseded.length, BURST - 1, `the other ${BURST - 1} were superseded`)
  t.ok(superseded.every((r) => r.body?.code === 'LONGPOLL_POLL_SUPERSEDED'), 'with LONGPOLL_POLL_SUPERSEDED')
  t.equal((await otherHeld).body.messages[0].id, m.id, 'another session\'s held poll is untouched by the burst')
  t.equal((await s.app.longPoll.stats()).heldPolls, 0, 'nothing stays held')
})

t.test('a room collector: joins beyond maxRoomsPerSession are refused and announce nothing; a huge rooms list at register creates nothing', async (t) => {
  const MAX_ROOMS = 10
  // 200 joins of one session on purpose (the joins rate limit has tests of its own): off here.
  const s = await start(t, { maxRoomsPerSession: MAX_ROOMS, rateLimit: false, joinRateLimit: false })
  const a = await register(s)
  const watcher = await register(s, { rooms: Array.from({ length: MAX_ROOMS }, (_, i) => `r${i}`) })
  const statuses: number[] = []
  for (let i = 0; i < 200; i++) statuses.push((await join(s, a.token, `r${i}`)).status)
  t.same(statuses.slice(0, MAX_ROOMS), Array(MAX_ROOMS).fill(204), `the first ${MAX_ROOMS} joins succeed`)
  t.ok(statuses.slice(MAX_ROOMS).every((x) => x === 403), 'the other 190 are 403')
  assertError(t, await join(s, a.token, 'one-more'), 403, 'LONGPOLL_TOO_MANY_ROOMS', 'a join beyond the limit')
  for (let i = MAX_ROOMS; i < MAX_ROOMS + 3; i++) {
    assertError(t, await members(s, a.token, `r${i}`), 403, 'LONGPOLL_NOT_A_MEMBER', `not a member of refused room r${i}`)
  }
  const seen = await pollOk(s, watcher.token, { cursor: watcher.cursor, wait: 0 })
  const joinsOfA = seen.messages.filter((m) => m.type === 'join' && m.from === a.id)
  t.equal(joinsOfA.length, MAX_ROOMS, 'the watcher saw exactly the accepted joins of the collector')

  const before = (await s.app.longPoll.stats()).sessions
  const huge = await s.request({ method: 'POST', path: '/register', json: { rooms: Array.from({ length: 5000 }, (_, i) => `x${i}`) } })
  t.ok(huge.status === 403 || huge.status === 400, `register with 5 000 rooms refused (${huge.status} ${huge.body?.code})`)
  assertError(t, huge, huge.status, undefined, 'register with 5 000 rooms')
  t.equal((await s.app.longPoll.stats()).sessions, before, 'and no session was created')
  t.same(await s.app.longPoll.members('x1'), [], 'nor any of its rooms')
})

t.test('oversized and deeply nested bodies are refused with a 4xx, and the server keeps serving', async (t) => {
  const s = await start(t, { rateLimit: false }, { listen: true })
  const a = await register(s)
  const port = s.port as number
  const raw = (path: string, body: string, token?: string): Promise<Reply> =>
    httpCall(port, s.prefix, { method: 'POST', path, token, body, headers: { 'content-type': 'application/json' } })

  const big = await raw('/messages', JSON.stringify({ data: 'x'.repeat(5 * 1024 * 1024) }), a.token)
  t.equal(big.status, 413, `a 5 MiB body is 413 (${big.body?.code})`)
  assertError(t, big, 413, undefined, '5 MiB body')

  for (const depth of [1000, 30_000]) {
    const deep = '{"data":' + '['.repeat(depth) + ']'.repeat(depth) + '}'
    const res = await raw('/messages', deep, a.token)
    t.ok(res.status === 400 || res.status === 413, `data nested ${depth} deep: ${res.status} ${res.body?.code}`)
    assertError(t, res, res.status, undefined, `data nested ${depth} deep`)
    const prof = await raw('/register', '{"profile":{"p":' + '['.repeat(depth) + ']'.repeat(depth) + '}}')
    t.ok(prof.status >= 400 && prof.status < 500, `profile nested ${depth} deep: ${prof.status} ${prof.body?.code}`)
    assertError(t, prof, prof.status, undefined, `profile nested ${depth} deep`)
  }

  // Wide rather than deep: 4 000 empty arrays side by side, within the size limits, is an ordinary message.
  const wide = await send(s, a.token, { data: Array.from({ length: 4000 }, () => []) })
  t.equal(wide.status, 202, 'a wide but shallow message is accepted')

  t.equal((await s.app.longPoll.stats()).sessions, 1, 'no session was created by the refused registrations')
  const b = await register(s)
  t.equal((await send(s, b.token, { data: 'still fine' })).status, 202, 'the server keeps serving')
})

t.test('token guessing and malformed authorization: 401 every time, nothing created', async (t) => {
  const s = await start(t, {})
  const a = await register(s)
  const headers = [
    'Bearer ' + a.id, // the public id is not a token
    'Bearer ' + a.token.slice(0, -1),
    'Bearer ' + a.token + 'x',
    'bearer',
    'Bearer ',
    'Basic ' + Buffer.from('user:pass').toString('base64'),
    'Bearer ' + 'A'.repeat(8000),
    'Bearer ' + a.token + ' ' + a.token
  ]
  for (let i = 0; i < 200; i++) headers.push('Bearer ' + ((i + 1) * 2654435761 >>> 0).toString(36).padStart(43, 'q'))
  const replies: Reply[] = []
  for (const h of headers) {
    replies.push(await s.request({ path: '/poll?wait=0', headers: { authorization: h } }))
    replies.push(await s.request({ method: 'POST', path: '/messages', headers: { authorization: h }, json: { data: 1 } }))
  }
  t.equal(replies.filter((r) => r.status === 401 && r.body?.code === 'LONGPOLL_UNKNOWN_SESSION').length, replies.length,
    `all ${replies.length} guessed or malformed requests are 401 LONGPOLL_UNKNOWN_SESSION`)
  assertError(t, replies[0], 401, 'LONGPOLL_UNKNOWN_SESSION', 'the session id used as a token')
  const st = await s.app.longPoll.stats()
  t.equal(st.sessions, 1, 'no session created')
  t.equal(st.queued, 0, 'no message stored')
  t.equal((await poll(s, a.token, { cursor: a.cursor, wait: 0 })).status, 200, 'the real token still works')
})

t.test('junk cursors and sends to unknown sessions: protocol errors, no state', async (t) => {
  const s = await start(t, { rateLimit: false })
  const a = await register(s)
  for (const cursor of ['9'.repeat(2000), '-1', '0x10', '1e3', ' 1', '1 ', '١', '00000000000000000000001', '18446744073709551616', '%00', '[]', '{}']) {
    const res = await poll(s, a.token, { cursor, wait: 0 })
    assertError(t, res, 400, 'LONGPOLL_BAD_CURSOR', `cursor ${JSON.stringify(cursor.slice(0, 30))}`)
  }
  const sent: number[] = []
  for (let i = 0; i < 200; i++) sent.push((await send(s, a.token, { data: i, to: `nobody-${i}` })).status)
  t.ok(sent.every((x) => x === 404), '200 sends to unknown session ids are 404')
  const st = await s.app.longPoll.stats()
  t.equal(st.queued, 0, 'and store nothing')
  t.equal(st.sessions, 1, 'and create no session')
  const p = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same([p.messages, p.missed], [[], 0], 'the session\'s own mailbox is untouched')
})
