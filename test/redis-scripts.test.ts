/**
 * How the Redis store's scripts get their arguments (lib/stores/redis/lua.ts): the builder puts
 * them in the declared order, the Lua reads them back under their names (checked in a real Redis
 * when REDIS_URL is set), and a missing or mistyped argument does not compile.
 */
import t from 'tap'
import { script } from '../lib/stores/redis/lua.js'
import { read } from '../lib/stores/redis/message-scripts.js'
import { createSession, members } from '../lib/stores/redis/session-scripts.js'

const REDIS_URL = process.env.REDIS_URL

const probe = script<string>()('lpcProbe', {
  text: 'string',
  maybeText: 'string?',
  count: 'number',
  maybeCount: 'number?',
  list: 'string[]'
}, `
return cjson.encode({ P = P, text = text, maybeText = maybeText or 'nil', count = string.format('%.17g', count), countType = type(count),
  maybeCount = maybeCount or 'nil', size = #list, first = list[1] or 'nil', last = list[#list] or 'nil' })
`)

t.test('the builders put the arguments in the declared order, after the key prefix', async (t) => {
  t.same(createSession.argv('P:', { id: 'i', tokenHash: 't', profile: '', now: 5, sessionTtl: 6, maxSessions: 7, gcMargin: 8, rooms: ['a', 'b'] }),
    ['P:', 'i', 't', '', 5, 6, 7, 8, 'a', 'b'], 'a list goes last, one ARGV entry per item')
  t.same(read.argv('P:', { id: 's', cursor: null, limit: 3, now: 4 }), ['P:', 's', '', 3, 4], 'null is sent as an empty string')
  t.same(read.argv('P:', { now: 4, limit: 3, cursor: 0, id: 's' }), ['P:', 's', 0, 3, 4], 'the order of the object given does not matter')
  t.same(members.argv('P:', { room: 'r', clock: -1 }), ['P:', 'r', -1])
  t.same(probe.argv('P:', { text: 'x', maybeText: null, count: 1, maybeCount: null, list: [] }), ['P:', 'x', '', 1, ''])

  // What tsc refuses (checked by `tsc --noEmit`; the calls themselves only build arrays):
  // @ts-expect-error gcMargin is missing
  createSession.argv('P:', { id: 'i', tokenHash: 't', profile: '', now: 5, sessionTtl: 6, maxSessions: 7, rooms: [] })
  // @ts-expect-error now must be a number
  read.argv('P:', { id: 's', cursor: null, limit: 3, now: '4' })
  // @ts-expect-error an argument the script does not declare
  members.argv('P:', { room: null, clock: 0, limit: 3 })
  // @ts-expect-error null only where the kind allows it
  members.argv('P:', { room: null, clock: null })
})

t.test('a declaration that Lua could not read is refused when the module loads', async (t) => {
  t.throws(() => script<null>()('lpcBad', { list: 'string[]', after: 'string' }, ''), /list, must come last/)
  t.throws(() => script<null>()('lpcBad', { end: 'string' }, ''), /not usable in Lua/, 'a Lua keyword')
  t.throws(() => script<null>()('lpcBad', { touch: 'string' }, ''), /not usable in Lua/, 'a shared helper\'s name')
  t.throws(() => script<null>()('lpcBad', { 'a-b': 'string' }, ''), /not usable in Lua/, 'no identifier')
})

t.test('the Lua reads each argument under its name, as its kind says', { skip: REDIS_URL ? false : 'REDIS_URL not set' }, async (t) => {
  const { Redis } = await import('ioredis')
  const client = new Redis(REDIS_URL as string)
  t.teardown(() => client.quit())
  const run = async (args: Parameters<typeof probe.argv>[1]): Promise<unknown> =>
    JSON.parse(await client.eval(probe.lua, 0, ...probe.argv('lpctest:probe:', args)) as string)
  t.same(await run({ text: 'a b', maybeText: 'm', count: 1700000000123, maybeCount: 0, list: ['x', 'y', 'z'] }), {
    P: 'lpctest:probe:', text: 'a b', maybeText: 'm', count: '1700000000123', countType: 'number', maybeCount: 0, size: 3, first: 'x', last: 'z'
  })
  t.same(await run({ text: '', maybeText: null, count: -1.5, maybeCount: null, list: [] }), {
    P: 'lpctest:probe:', text: '', maybeText: 'nil', count: '-1.5', countType: 'number', maybeCount: 'nil', size: 0, first: 'nil', last: 'nil'
  }, 'null arrives as nil, an empty list as an empty table')
})
