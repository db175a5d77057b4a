/**
 * How the Redis store's scripts get their arguments (lib/stores/redis/lua.ts): the builder puts
 * the key base first (KEYS[1]) and the arguments in the declared order, the Lua reads them back
 * under their names (checked in a real Redis when REDIS_URL is set), a library's arguments must
 * be declared by the scripts that use it, and a missing or mistyped argument does not compile.
 */
import t from 'tap'
import { hasHashTag, lib, script } from '../lib/stores/redis/lua.js'
import { endPoll } from '../lib/stores/redis/message-scripts.js'
import { members } from '../lib/stores/redis/room-scripts.js'
import { createSession } from '../lib/stores/redis/session-scripts.js'
import { REDIS_URL, redisSkip } from './helpers/redis.js'

const twice = lib('twice', { factor: 'number' }, [], `
local function twice (x) return x * factor * 2 end
`)

const probe = script<string>()('lpcProbe', {
  text: 'string',
  maybeText: 'string?',
  count: 'number',
  maybeCount: 'number?',
  factor: 'number',
  list: 'string[]'
}, `
return cjson.encode({ P = P, text = text, maybeText = maybeText or 'nil', count = string.format('%.17g', count), countType = type(count),
  maybeCount = maybeCount or 'nil', size = #list, first = list[1] or 'nil', last = list[#list] or 'nil', twice = twice(count) })
`, [twice])

t.test('the builders put the key base, then the arguments in the declared order', async (t) => {
  const create = { id: 'i', tokenHash: 't', profile: 'null', user: null, context: 'null', now: 5, sessionTtl: 6, maxSessions: 7 } as const
  const rate = { maxPerUser: 0, gcMargin: 8, rateKey: null, rateBucket: 'register', rateMax: 0, rateWindow: 0, rateCost: 1 } as const
  t.same(createSession.argv('P:', { ...create, ...rate, historyMax: 0, rooms: ['a', 'b'] }),
    ['P:', 'i', 't', 'null', '', 'null', 5, 6, 7, 0, 8, '', 'register', 0, 0, 1, 0, 'a', 'b'],
    'a list goes last, one ARGV entry per item; null is sent as an empty string')
  t.same(endPoll.argv('P:', { gcMargin: 4, sessionTtl: 3, now: 2, seq: 1, id: 's' }), ['P:', 's', 1, 2, 3, 4], 'the order of the object given does not matter')
  t.same(members.argv('P:', { room: null, after: 7, limit: 10, now: -1 }), ['P:', '', 7, 10, -1])
  t.same(probe.argv('P:', { text: 'x', maybeText: null, count: 1, maybeCount: null, factor: 3, list: [] }), ['P:', 'x', '', 1, '', 3])

  // What tsc refuses (checked by `tsc --noEmit`; the calls themselves only build arrays):
  // @ts-expect-error gcMargin is missing
  endPoll.argv('P:', { id: 's', seq: 1, now: 2, sessionTtl: 3 })
  // @ts-expect-error now must be a number
  endPoll.argv('P:', { id: 's', seq: 1, now: '2', sessionTtl: 3, gcMargin: 4 })
  // @ts-expect-error an argument the script does not declare
  members.argv('P:', { room: null, after: null, limit: 1, now: 0, clock: 3 })
  // @ts-expect-error null only where the kind allows it
  members.argv('P:', { room: null, after: null, limit: null, now: 0 })
})

t.test('a declaration that Lua could not read is refused when the module loads', async (t) => {
  t.throws(() => script<null>()('lpcBad', { list: 'string[]', after: 'string' }, ''), /list, must come last/)
  t.throws(() => script<null>()('lpcBad', { end: 'string' }, ''), /not usable in Lua/, 'a Lua keyword')
  t.throws(() => script<null>()('lpcBad', { emit: 'string' }, ''), /not usable in Lua/, 'a shared helper\'s name')
  t.throws(() => script<null>()('lpcBad', { twice: 'number', factor: 'number' }, '', [twice]), /not usable in Lua/, 'a library function\'s name')
  t.throws(() => script<null>()('lpcBad', { 'a-b': 'string' }, ''), /not usable in Lua/, 'no identifier')
  t.throws(() => script<null>()('lpcBad', { x: 'number' }, '', [twice]), /library twice needs the argument factor/, 'what a library reads')
  t.throws(() => script<null>()('lpcBad', { factor: 'string' }, '', [twice]), /library twice needs the argument factor \(number\)/, 'of its kind')
})

t.test('a library comes once, after the libraries it uses', async (t) => {
  const base = lib('base', {}, [], 'local function base () return 1 end')
  const a = lib('a', {}, [base], 'local function fa () return base() end')
  const b = lib('b', {}, [base, a], 'local function fb () return fa() end')
  const s = script<null>()('lpcOrder', {}, 'return fb()', [b, a])
  const at = (name: string): number => s.lua.indexOf('-- library ' + name + '\n')
  t.ok(at('base') >= 0 && at('base') < at('a') && at('a') < at('b'), 'base, a, b')
  t.equal(s.lua.split('-- library base\n').length, 2, 'base once')
})

t.test('hash tags of key prefixes', async (t) => {
  t.equal(hasHashTag('lpc:'), false)
  t.equal(hasHashTag('{}lpc:'), false, 'an empty tag is none (Redis hashes the whole key)')
  t.equal(hasHashTag('lpc:{'), false)
  t.equal(hasHashTag('{chat}:'), true)
  t.equal(hasHashTag('app:{eu}:'), true)
})

t.test('the Lua reads each argument under its name, as its kind says', { skip: redisSkip }, async (t) => {
  const { Redis } = await import('ioredis')
  const client = new Redis(REDIS_URL as string)
  t.teardown(() => client.quit())
  const run = async (args: Parameters<typeof probe.argv>[1]): Promise<unknown> =>
    JSON.parse(await client.eval(probe.lua, 1, ...probe.argv('lpctest:probe:', args)) as string)
  t.same(await run({ text: 'a b', maybeText: 'm', count: 1700000000123, maybeCount: 0, factor: 1, list: ['x', 'y', 'z'] }), {
    P: 'lpctest:probe:', text: 'a b', maybeText: 'm', count: '1700000000123', countType: 'number', maybeCount: 0, size: 3, first: 'x', last: 'z', twice: 3400000000246
  })
  t.same(await run({ text: '', maybeText: null, count: -1.5, maybeCount: null, factor: 2, list: [] }), {
    P: 'lpctest:probe:', text: '', maybeText: 'nil', count: '-1.5', countType: 'number', maybeCount: 'nil', size: 0, first: 'nil', last: 'nil', twice: -6
  }, 'null arrives as nil, an empty list as an empty table')
})
