/**
 * How the Redis store declares its Lua scripts, so that the order of ARGV is written once.
 *
 * Each script names its arguments in one object, `{ id: 'string', now: 'number', ... }`, whose
 * key order is the ARGV order (ARGV[1] is always the key prefix, `P`). From that one object come
 * both the Lua locals that read ARGV (`local id = ARGV[2]`, `local now = tonumber(ARGV[3])`),
 * put before the script's body, and the TypeScript function that builds ARGV from a named,
 * typed object: a missing, misspelt or mistyped argument is a tsc error, and the two sides
 * cannot disagree on positions. The Lua stays in .ts files: the builds have no loader for .lua.
 */

export type Arg = string | number

/** The kinds of argument: the TypeScript type the builder takes, and how the Lua local is read. */
interface Kinds {
  /** `local x = ARGV[i]` */
  string: string
  /** `local x = ARGV[i]`; null is sent as '', and '' reads as nil */
  'string?': string | null
  /** `local x = tonumber(ARGV[i])` */
  number: number
  /** `local x = tonumber(ARGV[i])`; null is sent as '', which reads as nil */
  'number?': number | null
  /** The rest of ARGV as a Lua list; only as the last argument. */
  'string[]': readonly string[]
}

export type Kind = keyof Kinds
export type Fields = Readonly<Record<string, Kind>>
/** The builder's argument for a script declared with `fields`. */
export type ArgsOf<F extends Fields> = { readonly [K in keyof F]: Kinds[F[K]] }

export interface Script<A, R> {
  /** The command name given to ioredis's `defineCommand`. */
  readonly command: string
  /** The whole source: the shared helpers, the generated ARGV locals, the body. */
  readonly lua: string
  /** The ARGV of one call, in the order the Lua reads it. */
  argv (prefix: string, args: A): Arg[]
  /** Type only (never set): the reply as ioredis hands it over (nil/false → null, tables → arrays). */
  readonly reply?: R
}

// Shared helpers, put before every script. They use only P (ARGV[1], the key prefix).
const HELPERS = `
local function num (x) return string.format('%d', x) end
-- A score bound for ZRANGEBYSCORE/ZCOUNT, exact for every double (tostring keeps 14 digits).
local function scoreText (x) return string.format('%.17g', x) end
local function above (x) return '(' .. scoreText(x) end
-- Sets the backstop TTL of the session's own keys. Not of its room list (sr:), which is small:
-- whenever the session is swept, even after its other keys timed out, the sweep can still
-- take it out of its rooms.
local function touch (id, ms)
  local sk = P .. 's:' .. id
  local tok = redis.call('HGET', sk, 'tok')
  if not tok then return end
  redis.call('PEXPIRE', sk, ms)
  redis.call('PEXPIRE', P .. 't:' .. tok, ms)
  redis.call('PEXPIRE', P .. 'mb:' .. id, ms)
end
-- Gives a key created after the session the same remaining TTL as the session hash.
local function sameTtl (id, key)
  local ttl = redis.call('PTTL', P .. 's:' .. id)
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
-- Whether a mailbox entry ('expiresAt|messageId') has expired.
local function expired (e, now)
  return tonumber(string.sub(e, 1, string.find(e, '|', 1, true) - 1)) <= now
end
-- Drops expired entries from the head of a mailbox whose first entry has sequence head.
-- Returns how many were removed and how many of them had never been delivered.
local function expireHead (mk, head, issued, now)
  local removed, dropped = 0, 0
  while true do
    local batch = redis.call('LRANGE', mk, 0, 99)
    local k = 0
    for i = 1, #batch do
      if not expired(batch[i], now) then break end
      k = i
      if head + i - 1 > issued then dropped = dropped + 1 end
    end
    if k > 0 then
      redis.call('LTRIM', mk, k, -1)
      head, removed = head + k, removed + k
    end
    if k < 100 then return removed, dropped end
  end
end
-- Deletes every key of the session and takes it out of its rooms; publishes 'ended'.
local function endOne (id)
  local sk = P .. 's:' .. id
  local f = redis.call('HMGET', sk, 'tok', 'prof')
  local srk = P .. 'sr:' .. id
  local rooms = redis.call('SMEMBERS', srk)
  for _, r in ipairs(rooms) do redis.call('SREM', P .. 'r:' .. r, id) end
  local mk = P .. 'mb:' .. id
  local len = redis.call('LLEN', mk)
  if len > 0 then redis.call('HINCRBY', P .. 'stats', 'queued', -len) end
  redis.call('DEL', sk, srk, mk)
  if f[1] then redis.call('DEL', P .. 't:' .. f[1]) end
  redis.call('ZREM', P .. 'sessions', id)
  redis.call('PUBLISH', P .. 'events', cjson.encode({ type = 'ended', sessionId = id }))
  return { id, f[2] or '', rooms }
end
`

const LUA_RESERVED = new Set(['and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function', 'if', 'in',
  'local', 'nil', 'not', 'or', 'repeat', 'return', 'then', 'true', 'until', 'while', 'P', 'ARGV', 'KEYS'])
const HELPER_NAMES = [...HELPERS.matchAll(/local function (\w+)/g)].map((m) => m[1])

/** The Lua line that reads argument `name` of `kind` from ARGV[i]. */
function luaLocal (name: string, kind: Kind, i: number): string {
  switch (kind) {
    case 'string': return `local ${name} = ARGV[${i}]`
    case 'string?': return `local ${name} = ARGV[${i}]\nif ${name} == '' then ${name} = nil end`
    case 'number':
    case 'number?': return `local ${name} = tonumber(ARGV[${i}])`
    case 'string[]': return `local ${name} = {}\nfor i = ${i}, #ARGV do ${name}[#${name} + 1] = ARGV[i] end`
  }
}

/**
 * Declares a script: `script<Reply>()(command, { name: kind, ... }, body)`. (Curried so that the
 * reply type is written and the argument types are inferred.) Throws at load time for an argument
 * list that Lua could not read: a name that is no plain identifier or clashes with a helper, or a
 * list that is not last.
 */
export function script<R> () {
  return <const F extends Fields>(command: string, fields: F, body: string): Script<ArgsOf<F>, R> => {
    const entries = Object.entries(fields)
    const locals = entries.map(([name, kind], i) => {
      if (!/^[a-z][A-Za-z0-9]*$/.test(name) || LUA_RESERVED.has(name) || HELPER_NAMES.includes(name)) {
        throw new Error(`${command}: argument name ${name} is not usable in Lua`)
      }
      if (kind === 'string[]' && i !== entries.length - 1) throw new Error(`${command}: ${name}, a list, must come last`)
      return luaLocal(name, kind, i + 2)
    })
    return {
      command,
      lua: 'local P = ARGV[1]\n' + HELPERS + '-- ARGV\n' + locals.join('\n') + '\n' + body,
      argv (prefix, args) {
        const out: Arg[] = [prefix]
        for (const [name, kind] of entries) {
          const value = (args as Record<string, Kinds[Kind]>)[name]
          if (kind === 'string[]') out.push(...(value as readonly string[]))
          else out.push((value as Arg | null) ?? '')
        }
        return out
      }
    }
  }
}
