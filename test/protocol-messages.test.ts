/**
 * PROTOCOL.md, `POST /messages`: 202, addressing errors, data depth, maxMessageBytes in UTF-8
 * bytes, the rate limit (429, counting accepted sends), the order of the checks, and fields the
 * client cannot set.
 */
import t from 'tap'
import type { Message } from '../types/index.js'
import { register, send, reader, assertError } from './helpers/http.js'
import { start } from './helpers/server.js'
import { sleep } from './helpers/wait.js'

/** `[]` nested to depth n (n >= 1), with `leaf` inside the innermost when given. */
function arrays (n: number, leaf?: unknown): unknown {
  let v: unknown = leaf === undefined ? [] : [leaf]
  for (let i = 1; i < n; i++) v = [v]
  return v
}
/** `{}` nested to depth n (n >= 1). */
function objects (n: number): unknown {
  let v: unknown = {}
  for (let i = 1; i < n; i++) v = { k: v }
  return v
}
/** Arrays and objects alternating, depth n (n >= 1). */
function mixed (n: number): unknown {
  let v: unknown = { last: true }
  for (let i = 1; i < n; i++) v = i % 2 === 0 ? { k: v, s: 'x' } : [1, v, null]
  return v
}

t.test('202 { id, ts }; both room and to is 400; unknown `to` is 404; a room one is not in is 403', async (t) => {
  const s = await start(t, { rateLimit: false })
  const a = await register(s, { rooms: ['mine'] })
  const b = await register(s, { rooms: ['theirs'] })
  const readB = reader(s, b)
  await readB()

  const ok = await send(s, a.token, { data: 'hi', to: b.id })
  t.equal(ok.status, 202)
  t.match(ok.headers['cache-control'], /no-store/)
  t.same(Object.keys(ok.body).sort(), ['id', 'ts'])
  const [m] = await readB()
  t.same([m.id, m.ts], [ok.body.id, ok.body.ts], 'the 202 id and ts are the message\'s')

  assertError(t, await send(s, a.token, { data: 1, room: 'mine', to: b.id }), 400, undefined, 'both room and to')
  assertError(t, await send(s, a.token, { data: 1, to: 'no-such-id' }), 404, 'LONGPOLL_NO_SUCH_SESSION', 'unknown to')
  assertError(t, await send(s, a.token, { data: 1, to: a.token }), 404, 'LONGPOLL_NO_SUCH_SESSION', 'a token is not an id')
  assertError(t, await send(s, a.token, { data: 1, room: 'theirs' }), 403, 'LONGPOLL_NOT_A_MEMBER', 'room of others')
  assertError(t, await send(s, a.token, { data: 1, room: 'empty' }), 403, 'LONGPOLL_NOT_A_MEMBER', 'room nobody is in')
  assertError(t, await send(s, a.token, { data: 1, room: 'bad name' }), 400, undefined, 'bad room name')
  t.same(await readB(), [], 'nothing refused was delivered')
})

t.test('the body: data is required (any JSON, null included); other shapes are 400', async (t) => {
  const s = await start(t, { rateLimit: false })
  const a = await register(s)
  const readA = reader(s, a)
  for (const data of [null, 0, false, '', 'text', [], {}, [1, 'two', { three: [null] }], 1.5, -7]) {
    const res = await send(s, a.token, { data })
    t.equal(res.status, 202, `data ${JSON.stringify(data)}`)
    const [m] = await readA()
    t.same(m.data, data, `data ${JSON.stringify(data)} delivered as sent`)
  }
  for (const body of [{}, { room: 'r' }, [], 'data', 5, null]) {
    assertError(t, await send(s, a.token, body), 400, undefined, `body ${JSON.stringify(body)}`)
  }
  assertError(t, await s.request({ method: 'POST', path: '/messages', token: a.token, body: '{"data":', headers: { 'content-type': 'application/json' } }), 400, undefined, 'broken JSON')
  assertError(t, await s.request({ method: 'POST', path: '/messages', token: a.token }), 400, undefined, 'no body')
  t.same(await readA(), [], 'nothing refused was delivered')
})

t.test('room and to of the wrong JSON type are refused, not coerced', async (t) => {
  const s = await start(t, { rateLimit: false })
  const a = await register(s, { rooms: ['r'] })
  const b = await register(s)
  const readB = reader(s, b)
  for (const body of [{ data: 1, room: ['r'] }, { data: 1, to: [b.id] }, { data: 1, room: true }, { data: 1, room: 5 }]) {
    assertError(t, await send(s, a.token, body), 400, undefined, JSON.stringify(body))
  }
  t.same(await readB(), [], 'nothing delivered')
})

t.test('data depth: 32 levels of arrays and objects accepted, 33 refused with 400 LONGPOLL_BAD_MESSAGE', async (t) => {
  const s = await start(t, { rateLimit: false, maxMessageBytes: 100_000 })
  const a = await register(s)
  const readA = reader(s, a)
  for (const [name, make] of [['arrays', (n: number) => arrays(n)], ['arrays with a scalar inside', (n: number) => arrays(n, 'leaf')], ['objects', objects], ['mixed', mixed]] as const) {
    const ok = make(32)
    const res = await send(s, a.token, { data: ok })
    t.equal(res.status, 202, `${name}: depth 32 accepted`)
    const [m] = await readA()
    t.same(m.data, ok, `${name}: depth 32 delivered intact`)
    assertError(t, await send(s, a.token, { data: make(33) }), 400, 'LONGPOLL_BAD_MESSAGE', `${name}: depth 33`)
  }
  assertError(t, await send(s, a.token, { data: { wide: [1, 2, 3], deep: arrays(32) } }), 400, 'LONGPOLL_BAD_MESSAGE', 'depth 33 inside an object')
  for (const depth of [5000, 50_000]) {
    const body = '{"data":' + '['.repeat(depth) + ']'.repeat(depth) + '}'
    const res = await s.request({ method: 'POST', path: '/messages', token: a.token, body, headers: { 'content-type': 'application/json' } })
    assertError(t, res, 400, undefined, `depth ${depth}`)
  }
  t.equal((await send(s, a.token, { data: 'scalar' })).status, 202, 'a scalar is depth 0')
  t.same(await readA().then((ms) => ms.map((m) => m.data)), ['scalar'], 'only accepted messages were delivered')
})

t.test('maxMessageBytes: UTF-8 bytes of JSON.stringify(data), multi-byte characters at the boundary', async (t) => {
  const s = await start(t, { rateLimit: false, maxMessageBytes: 16 })
  const a = await register(s)
  const cases: Array<[unknown, boolean]> = [
    ['x'.repeat(14), true], // "xxxxxxxxxxxxxx" = 16 bytes
    ['x'.repeat(15), false], // 17 bytes
    ['é'.repeat(7), true], // 2 + 14 = 16 bytes, 9 characters
    ['é'.repeat(7) + 'x', false], // 17 bytes, 10 characters
    ['😀'.repeat(3) + 'xx', true], // 2 + 12 + 2 = 16 bytes
    ['😀'.repeat(4), false], // 18 bytes, 10 UTF-16 units
    ['€€€€€', false], // 2 + 15 = 17 bytes, 7 characters
    [{ k: 'ééééé' }, false], // {"k":"ééééé"} = 8 + 10 = 18 bytes
    [{ k: 'éééé' }, true], // 16 bytes
    ['\n'.repeat(7), true], // JSON escapes: "\n..." = 2 + 14 = 16 bytes
    ['\n'.repeat(8), false] // 18 bytes in JSON, 8 characters
  ]
  for (const [data, fits] of cases) {
    const bytes = Buffer.byteLength(JSON.stringify(data))
    t.equal(bytes <= 16, fits, `fixture ${JSON.stringify(data)} is ${bytes} bytes`)
    const res = await send(s, a.token, { data })
    if (fits) t.equal(res.status, 202, `${JSON.stringify(data)} (${bytes} bytes) accepted`)
    else assertError(t, res, 413, 'LONGPOLL_MESSAGE_TOO_LARGE', `${JSON.stringify(data)} (${bytes} bytes)`)
  }

  const d = await start(t, { rateLimit: false })
  const b = await register(d)
  t.equal((await send(d, b.token, { data: 'x'.repeat(16_382) })).status, 202, 'default: 16 384 bytes accepted')
  assertError(t, await send(d, b.token, { data: 'x'.repeat(16_383) }), 413, 'LONGPOLL_MESSAGE_TOO_LARGE', 'default: 16 385 bytes')
})

t.test('rate limit: 429 LONGPOLL_RATE_LIMITED with retry-after in whole seconds, counting accepted sends only', async (t) => {
  const s = await start(t, { rateLimit: { max: 3, timeWindow: 2000 } })
  const a = await register(s)
  const b = await register(s)
  // Refused sends do not count.
  for (let i = 0; i < 4; i++) t.equal((await send(s, a.token, { data: i, to: 'nobody' })).status, 404)
  for (let i = 0; i < 4; i++) t.equal((await send(s, a.token, { data: i, room: 'r', to: b.id })).status, 400)
  for (let i = 0; i < 3; i++) t.equal((await send(s, a.token, { data: i })).status, 202, `accepted send ${i + 1} of 3`)

  const limited = await send(s, a.token, { data: 'fourth' })
  assertError(t, limited, 429, 'LONGPOLL_RATE_LIMITED', 'fourth accepted send in the window')
  const ra = String(limited.headers['retry-after'])
  t.match(ra, /^\d+$/, `retry-after is whole seconds (${ra})`)
  t.ok(Number(ra) >= 1 && Number(ra) <= 2, 'retry-after within the 2 s window, rounded up')

  t.equal((await send(s, b.token, { data: 'b' })).status, 202, 'the limit is per session')

  await sleep(Number(ra) * 1000 + 100)
  t.equal((await send(s, a.token, { data: 'later' })).status, 202, 'accepted again after retry-after')
})

t.test('rate limit: the default is 20 per second; false turns it off', async (t) => {
  const s = await start(t, {})
  const a = await register(s)
  const statuses: number[] = []
  const began = Date.now()
  for (let i = 0; i < 21; i++) statuses.push((await send(s, a.token, { data: i })).status)
  const took = Date.now() - began
  t.same(statuses.slice(0, 20), Array(20).fill(202), '20 accepted')
  if (took < 900) t.equal(statuses[20], 429, `the 21st limited (21 sends in ${took} ms)`)
  else t.comment(`21 sends took ${took} ms (a loaded machine): the 21st may fall in the next window, not checked`)

  const off = await start(t, { rateLimit: false })
  const b = await register(off)
  let accepted = 0
  for (let i = 0; i < 60; i++) if ((await send(off, b.token, { data: i })).status === 202) accepted++
  t.equal(accepted, 60, 'rateLimit: false accepts all')
})

t.test('check order: token (401), rate limit (429), body (400, 413), then addressing (403, 404)', async (t) => {
  const s = await start(t, { rateLimit: { max: 2, timeWindow: 60_000 }, maxMessageBytes: 32 })
  const limitedS = await register(s)
  const fresh = await register(s, { rooms: ['mine'] })
  for (let i = 0; i < 2; i++) t.equal((await send(s, limitedS.token, { data: i })).status, 202)

  const huge = 'x'.repeat(100)
  const deep = arrays(40)
  // 401 first, whatever else is wrong.
  assertError(t, await send(s, 'bad-token', { data: huge, room: 'x', to: 'y' }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'bad token, bad body')
  assertError(t, await s.request({ method: 'POST', path: '/messages', json: { data: huge, to: 'nobody' } }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'no token, bad body')
  // 429 before the body.
  assertError(t, await send(s, limitedS.token, { data: huge }), 429, 'LONGPOLL_RATE_LIMITED', 'limited, too large')
  assertError(t, await send(s, limitedS.token, { data: deep }), 429, 'LONGPOLL_RATE_LIMITED', 'limited, too deep')
  assertError(t, await send(s, limitedS.token, { data: 1, room: 'mine', to: fresh.id }), 429, 'LONGPOLL_RATE_LIMITED', 'limited, room and to')
  assertError(t, await send(s, limitedS.token, { nodata: true }), 429, 'LONGPOLL_RATE_LIMITED', 'limited, no data')
  assertError(t, await send(s, limitedS.token, { data: 1, to: 'nobody' }), 429, 'LONGPOLL_RATE_LIMITED', 'limited, unknown to')
  // Body before addressing.
  assertError(t, await send(s, fresh.token, { data: huge, to: 'nobody' }), 413, 'LONGPOLL_MESSAGE_TOO_LARGE', 'too large, unknown to')
  assertError(t, await send(s, fresh.token, { data: huge, room: 'not-mine' }), 413, 'LONGPOLL_MESSAGE_TOO_LARGE', 'too large, not a member')
  assertError(t, await send(s, fresh.token, { data: deep, room: 'not-mine' }), 400, 'LONGPOLL_BAD_MESSAGE', 'too deep, not a member')
  assertError(t, await send(s, fresh.token, { data: deep, to: 'nobody' }), 400, 'LONGPOLL_BAD_MESSAGE', 'too deep, unknown to')
  assertError(t, await send(s, fresh.token, { data: 1, room: 'not-mine', to: 'nobody' }), 400, undefined, 'room and to, both wrong')
  assertError(t, await send(s, fresh.token, { room: 'not-mine' }), 400, undefined, 'no data, not a member')
  // Then addressing.
  assertError(t, await send(s, fresh.token, { data: 1, room: 'not-mine' }), 403, 'LONGPOLL_NOT_A_MEMBER')
  assertError(t, await send(s, fresh.token, { data: 1, to: 'nobody' }), 404, 'LONGPOLL_NO_SUCH_SESSION')
  t.equal((await send(s, fresh.token, { data: 1, room: 'mine' })).status, 202, 'and none of those counted against the limit')
})

t.test('from, id, type and ts are the server\'s: a client cannot forge them', async (t) => {
  const s = await start(t, { rateLimit: false })
  const a = await register(s, { rooms: ['r'] })
  const b = await register(s, { rooms: ['r'] })
  const readB = reader(s, b)
  await readB()
  const forged = { data: 'forged?', room: 'r', from: b.id, id: 'my-own-id', type: 'join', ts: 1, extra: 'x' }
  const res = await send(s, a.token, forged)
  if (res.status === 202) {
    const ms: Message[] = await readB()
    t.equal(ms.length, 1)
    const m = ms[0]
    t.same(Object.keys(m).sort(), ['data', 'from', 'id', 'room', 'to', 'ts', 'type'], 'only the message fields')
    t.equal(m.from, a.id, 'from is the sender')
    t.equal(m.id, res.body.id, 'id is the server\'s')
    t.not(m.id, 'my-own-id')
    t.equal(m.type, 'message')
    t.equal(m.ts, res.body.ts)
    t.ok(m.ts > 1_000_000_000_000, 'ts is the server\'s clock')
    t.equal(m.data, 'forged?')
  } else {
    assertError(t, res, 400, undefined, 'refused')
    t.same(await readB(), [], 'nothing delivered')
  }
})
