/**
 * How the Redis store declares its Lua scripts, so that the order of ARGV is written once.
 *
 * Each script names its arguments in one object, `{ id: 'string', now: 'number', ... }`, whose
 * key order is the ARGV order. From that one object come both the Lua locals that read ARGV
 * (`local id = ARGV[1]`, `local now = tonumber(ARGV[2])`), put before the script's body, and the
 * TypeScript function that builds the call from a named, typed object: a missing, misspelt or
 * mistyped argument is a tsc error, and the two sides cannot disagree on positions. The Lua
 * stays in .ts files: the builds have no loader for .lua.
 *
 * Every script is called with one key, KEYS[1]: the key base (the key prefix with its hash tag,
 * see ./index.ts), which the Lua calls `P` and puts before every key it builds. All keys of one
 * store are in the slot of that base, so a cluster client would route every call by it.
 *
 * Shared Lua functions live in libraries (`lib()`): a script lists the ones it uses, and each
 * library declares the script arguments it reads (`needs`, e.g. `messageTtl`), which the script
 * must declare with the same kind (checked when the module loads).
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
  /** The command name given to ioredis's `defineCommand` (with one key). */
  readonly command: string
  /** The whole source: the shared helpers, the generated ARGV locals, the libraries, the body. */
  readonly lua: string
  /** The key base (KEYS[1]) then the ARGV of one call, in the order the Lua reads it. */
  argv (base: string, args: A): Arg[]
  /** Type only (never set): the reply as ioredis hands it over (nil/false → null, tables → arrays). */
  readonly reply?: R
}

/** A library of Lua functions (`local function name (...)`) that scripts include. */
export interface Lib {
  readonly name: string
  /** Script arguments its functions read, which every script using it must declare. */
  readonly needs: Fields
  /** Libraries it calls, included before it. */
  readonly uses: readonly Lib[]
  readonly lua: string
}

// Put before every script. They use only P (KEYS[1], the key base).
const HELPERS = `
local function num (x) return string.format('%d', x) end
-- A score bound for ZRANGEBYSCORE/ZCOUNT, exact for every double (tostring keeps 14 digits).
local function scoreText (x) return string.format('%.17g', x) end
local function above (x) return '(' .. scoreText(x) end
-- Publishes an event (a table, JSON-encoded) on the store's channel.
local function emit (event) redis.call('PUBLISH', EVENTS, cjson.encode(event)) end
-- Adds n to a global counter of stats().
local function stat (field, n) if n ~= 0 then redis.call('HINCRBY', P .. 'stats', field, n) end end
`

const LUA_RESERVED = new Set(['and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function', 'if', 'in',
  'local', 'nil', 'not', 'or', 'repeat', 'return', 'then', 'true', 'until', 'while', 'P', 'EVENTS', 'ARGV', 'KEYS'])

function functionNames (lua: string): string[] {
  return [...lua.matchAll(/local function (\w+)/g)].map((m) => m[1] as string)
}

/** Declares a library of Lua functions. */
export function lib (name: string, needs: Fields, uses: readonly Lib[], lua: string): Lib {
  return { name, needs, uses, lua }
}

/** The libraries in include order (each after the ones it uses), each once. */
function ordered (libs: readonly Lib[]): Lib[] {
  const out: Lib[] = []
  const visit = (l: Lib): void => {
    if (out.includes(l)) return
    for (const u of l.uses) visit(u)
    out.push(l)
  }
  for (const l of libs) visit(l)
  return out
}

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
 * Declares a script: `script<Reply>()(command, { name: kind, ... }, body, libs)`. (Curried so
 * that the reply type is written and the argument types are inferred.) Throws at load time for
 * an argument list that Lua could not read (a name that is no plain identifier or clashes with
 * a function, a list that is not last) or that lacks what a library needs.
 */
export function script<R> () {
  return <const F extends Fields>(command: string, fields: F, body: string, libs: readonly Lib[] = []): Script<ArgsOf<F>, R> => {
    const entries = Object.entries(fields)
    const included = ordered(libs)
    const functions = [...functionNames(HELPERS), ...included.flatMap((l) => functionNames(l.lua))]
    const locals = entries.map(([name, kind], i) => {
      if (!/^[a-z][A-Za-z0-9]*$/.test(name) || LUA_RESERVED.has(name) || functions.includes(name)) {
        throw new Error(`${command}: argument name ${name} is not usable in Lua`)
      }
      if (kind === 'string[]' && i !== entries.length - 1) throw new Error(`${command}: ${name}, a list, must come last`)
      return luaLocal(name, kind, i + 1)
    })
    for (const l of included) {
      for (const [name, kind] of Object.entries(l.needs)) {
        if (fields[name] !== kind) throw new Error(`${command}: library ${l.name} needs the argument ${name} (${kind})`)
      }
    }
    return {
      command,
      lua: [
        "local P = KEYS[1]\nlocal EVENTS = P .. 'events'",
        HELPERS,
        '-- ARGV',
        locals.join('\n'),
        ...included.map((l) => `-- library ${l.name}\n${l.lua}`),
        '-- body',
        body
      ].join('\n'),
      argv (base, args) {
        const out: Arg[] = [base]
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

/**
 * The hash tag put after a key prefix that has none, so that every key of the store is in one
 * slot: `lpc:` → keys `lpc:{lpc}:s:<id>`, … (a prefix with its own tag, `{chat}:`, is used as it is).
 */
export const TAG_SUFFIX = '{lpc}:'

/** Whether `prefix` already has a Redis Cluster hash tag (a `{…}` with something inside). */
export function hasHashTag (prefix: string): boolean {
  const open = prefix.indexOf('{')
  if (open < 0) return false
  const close = prefix.indexOf('}', open + 1)
  return close > open + 1
}
