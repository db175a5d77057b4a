/**
 * A bounded, seeded fuzz of malformed requests (garbage JSON, wrong types, huge numbers, odd
 * headers, bad tokens, cursors and rooms, wrong content-types, unicode): the server answers
 * every one with a 2xx or 4xx, never a 5xx, keeps the protocol's error shape, and still works
 * afterwards.
 */
import t from 'tap'
import { register, pollOk, send, isProtocolCode, type RequestOptions } from './helpers/http.js'
import { prng } from './helpers/random.js'
import { start } from './helpers/server.js'

const REQUESTS = 500
const SEED = 20_261_128

t.test(`fuzz: ${REQUESTS} malformed requests get 4xx (or 2xx), never 5xx`, async (t) => {
  // The fuzz registers a throwaway session for each DELETE /session it sends: no register limit.
  const s = await start(t, { pollTimeout: 30, maxMessageBytes: 2048, maxProfileBytes: 256, maxRoomsPerSession: 5, registerRateLimit: false })
  const a = await register(s, { rooms: ['r'] })
  const b = await register(s, { rooms: ['r'] })
  const rnd = prng(SEED)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]

  const tokens = [a.token, b.token, a.id, '', 'x', 'null', 'undefined', a.token + 'x', a.token.slice(1), a.token.toUpperCase(), 'A'.repeat(5000), '../../etc/passwd', '\'; DROP TABLE sessions; --', '%00', 'ÿÿÿ', '{}']
  const authHeaders = (): Record<string, string> => {
    // Half the requests carry a valid token, so that they reach the checks behind the 401.
    if (rnd() < 0.5) return { authorization: `Bearer ${pick([a.token, b.token])}` }
    const tok = pick(tokens)
    return pick<Record<string, string>>([
      { authorization: `Bearer ${tok}` },
      { authorization: `Bearer ${tok}` },
      { authorization: tok },
      { authorization: `Basic ${tok}` },
      { authorization: `Bearer  ${tok}` },
      { authorization: `Bearer ${tok} ${tok}` },
      { authorization: `bearer ${tok}` },
      { authorization: 'Bearer' },
      {}
    ])
  }
  const weird = [
    '', '0', '-0', '-1', '1.5', '1e3', '1e400', '-1e400', 'Infinity', 'NaN', '0x10', '9'.repeat(400), '00000001',
    'null', 'true', '[]', '{}', 'é', '😀', '\u0000', '%', '%ZZ', '+', ' ', 'a'.repeat(3000), '__proto__', 'constructor', a.cursor, a.id
  ]
  const rooms = ['r', 'q', '.', '..', '', 'a b', 'é', '😀', '%2F', '%ZZ', 'x'.repeat(65), 'x'.repeat(10_000), '__proto__', 'constructor', 'toString', '%00', 'a%2Fb', '...']
  const jsonValues: unknown[] = [
    null, true, 0, -1, 1e308, 'x', '', 'é😀', [], {}, [[[]]], { __proto__: { polluted: true } }, { constructor: { prototype: { x: 1 } } },
    'x'.repeat(3000), Array.from({ length: 300 }, (_, i) => i), { a: { b: { c: { d: [1, 2, { e: null }] } } } }
  ]
  const rawBodies = [
    '', '{', '}', '[', 'null', 'nul', '{"data":}', '{"data":1,}', '{"data":1e400}', '{"data":-1e400}', '{"data":123456789012345678901234567890}',
    '{"data":"\\ud800"}', '{"data":"\\u0000"}', '{"__proto__":{"polluted":true},"data":1}', '{"constructor":{"prototype":{"polluted":true}},"data":1}',
    '{"data":' + '['.repeat(3000) + ']'.repeat(3000) + '}', '{"rooms":' + '['.repeat(3000) + ']'.repeat(3000) + '}',
    '{"rooms":["r","r","r","r","r","r","r"]}', '{"rooms":["a","b","c","d","e","f"]}', '{"profile":{"x":"' + 'y'.repeat(300) + '"}}',
    '{"data":1,"room":"r","to":"x"}', '{"data":1,"to":"' + a.id + '"}', '{"data":1,"room":"nope"}', '{"data":1,"room":["r"]}', '{"data":1,"to":{}}',
    '\u0000\u0001\u0002', '\ufeff{"data":1}', '{"data":"' + 'é'.repeat(1500) + '"}', 'data=1&room=r', '<xml/>', '"just a string"', '12', 'true'
  ]
  const contentTypes = [
    'application/json', 'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'APPLICATION/JSON',
    'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=zz', 'application/jsonx', 'application/octet-stream', '*/*', ''
  ]

  const makeBody = (): { body?: string, headers: Record<string, string> } => {
    const headers: Record<string, string> = {}
    const ct = pick(contentTypes)
    if (ct !== '') headers['content-type'] = ct
    const r = rnd()
    if (r < 0.15) return { headers: {} }
    if (r < 0.55) return { body: pick(rawBodies), headers }
    const obj: Record<string, unknown> = {}
    for (const k of ['data', 'room', 'to', 'rooms', 'profile', 'from', 'id', 'type', 'ts']) if (rnd() < 0.35) obj[k] = rnd() < 0.5 ? pick(jsonValues) : pick(weird)
    return { body: JSON.stringify(rnd() < 0.9 ? obj : pick(jsonValues)), headers }
  }
  const query = (): string => {
    const parts: string[] = []
    for (const k of ['cursor', 'wait', 'cursor', 'wait', 'other']) if (rnd() < 0.4) parts.push(`${k}=${rnd() < 0.8 ? encodeURIComponent(pick(weird)) : pick(weird)}`)
    return parts.length === 0 ? '' : '?' + parts.join('&')
  }
  const roomSeg = (): string => {
    const r = pick(rooms)
    return rnd() < 0.7 ? encodeURIComponent(r) : r.replace(/[ /?#]/g, (c) => encodeURIComponent(c))
  }

  const statuses = new Map<number, number>()
  const failures: string[] = []
  for (let i = 0; i < REQUESTS; i++) {
    const kind = Math.floor(rnd() * 10)
    const { body, headers } = makeBody()
    let req: RequestOptions
    let known = true
    switch (kind) {
      case 0: req = { method: 'POST', path: '/register', body, headers: { ...headers, ...(rnd() < 0.2 ? authHeaders() : {}) } }; break
      case 1: case 2: req = { method: 'GET', path: '/poll' + query(), headers: { ...authHeaders(), ...(rnd() < 0.2 ? headers : {}) }, body: rnd() < 0.1 ? body : undefined }; break
      case 3: case 4: req = { method: 'POST', path: '/messages' + (rnd() < 0.1 ? query() : ''), body, headers: { ...authHeaders(), ...headers } }; break
      case 5: req = { method: 'POST', path: `/rooms/${roomSeg()}/${pick(['join', 'leave'])}`, headers: { ...authHeaders(), ...(rnd() < 0.3 ? headers : {}) }, body: rnd() < 0.3 ? body : undefined }; break
      case 6: req = { method: 'GET', path: `/rooms/${roomSeg()}/members${rnd() < 0.2 ? query() : ''}`, headers: authHeaders() }; break
      case 7: {
        // DELETE /session with a or b's token would end them: use a throwaway session instead.
        const victim = await register(s)
        const auth = JSON.parse(JSON.stringify(authHeaders()).replaceAll(a.token, victim.token).replaceAll(b.token, victim.token))
        req = { method: 'DELETE', path: '/session', headers: { ...auth, ...(rnd() < 0.3 ? headers : {}) }, body: rnd() < 0.3 ? body : undefined }
        break
      }
      case 8: {
        known = false
        req = { method: pick(['PUT', 'PATCH', 'GET', 'DELETE', 'OPTIONS']), path: pick(['/messages', '/register', '/rooms/r', '/rooms/r/join/x', '/poll/x', '/session/x', '/', '/%ZZ']), headers: authHeaders() }
        break
      }
      default: {
        // Headers that are odd rather than wrong.
        req = { method: 'GET', path: '/poll?wait=0', headers: { authorization: `Bearer ${pick([a.token, b.token])}`, [pick(['x-forwarded-for', 'cookie', 'accept', 'accept-encoding', 'if-none-match', 'cache-control', 'connection'])]: pick(['', 'x'.repeat(8000), '*/*', 'gzip, br', 'no-cache', 'ÿ', 'keep-alive, Upgrade']) } }
      }
    }
    // Room segments that contain a bare '%' make the URL undecodable: still an answer we check.
    let res
    try {
      res = await s.request(req)
    } catch (err) {
      failures.push(`#${i} ${req.method} ${req.path.slice(0, 80)}: the request threw ${(err as Error).message}`)
      continue
    }
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    const where = `#${i} ${req.method} ${req.path.slice(0, 80)} ${JSON.stringify(req.headers).slice(0, 120)} ${String(req.body).slice(0, 80)} -> ${res.status} ${res.text.slice(0, 160)}`
    if (res.status >= 500 || res.status < 200) {
      failures.push(where)
      continue
    }
    if (res.status >= 400) {
      const e = res.body
      if (e === null || typeof e !== 'object' || e.statusCode !== res.status || typeof e.message !== 'string' || typeof e.error !== 'string') failures.push(`${where} (not the error shape)`)
      else if (known && res.status !== 404 && !isProtocolCode(e.code)) failures.push(`${where} (code ${String(e.code)})`)
      // The router answers undecodable URLs and over-long parameters before any route (or the
      // plugin's hooks) is reached: those are not responses of the plugin's routes.
      const routerError = e?.code === 'FST_ERR_BAD_URL' || e?.code === 'FST_ERR_MAX_PARAM_LENGTH'
      if (known && res.status !== 404 && !routerError && !/no-store/.test(String(res.headers['cache-control']))) failures.push(`${where} (no cache-control: no-store)`)
    }
  }
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((x, y) => x[0] - y[0])))}`)
  t.same(failures, [], 'every answer is 2xx/4xx with the error shape')
  t.ok([...statuses.keys()].some((x) => x >= 400), 'the fuzz produced errors')

  // Nothing was polluted and the server still works.
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
  const c = await register(s, { rooms: ['r'] })
  t.equal((await send(s, c.token, { data: 'after the fuzz', room: 'r' })).status, 202)
  const p = await pollOk(s, c.token, { cursor: c.cursor, wait: 0 })
  t.same(p.messages.map((m) => m.data), [null, 'after the fuzz'], 'join (profile null) then the message')
})
