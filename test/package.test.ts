/**
 * The built package as its consumers load it: CommonJS `require` and ESM `import` of the main
 * entry and the subpaths, through the package's own name (exports map), from dist/.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

const root = join(__dirname, '..')

t.before(() => {
  if (!existsSync(join(root, 'dist/lib/index.js'))) {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root })
  }
})

function run (args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim()
}

t.test('CommonJS consumers require the plugin (named and default)', async (t) => {
  const out = run(['-e', `
    const m = require('fastify-long-poll-chat')
    console.log(typeof m.longPollChat, typeof m.default, m.default === m.longPollChat, typeof m.MemoryStore)`])
  t.equal(out, 'function function true function')
})

t.test('ESM consumers import the named export', async (t) => {
  const out = run(['--input-type=module', '-e', `
    import { longPollChat, MemoryStore } from 'fastify-long-poll-chat'
    console.log(typeof longPollChat, typeof MemoryStore, longPollChat[Symbol.for('plugin-meta')].name)`])
  t.equal(out, 'function function fastify-long-poll-chat')
})

t.test('the Redis store loads from its subpath, without loading ioredis', async (t) => {
  const cjs = run(['-e', `
    const { RedisStore } = require('fastify-long-poll-chat/redis')
    console.log(typeof RedisStore, Object.keys(require.cache).some((f) => f.includes('/node_modules/ioredis/')))`])
  t.equal(cjs, 'function false')
  const esm = run(['--input-type=module', '-e', `
    import { RedisStore } from 'fastify-long-poll-chat/redis'
    console.log(typeof RedisStore)`])
  t.equal(esm, 'function')
})

t.test('types resolve from the exports map', async (t) => {
  t.ok(existsSync(join(root, 'dist/lib/index.d.ts')))
  t.ok(existsSync(join(root, 'dist/types/index.d.ts')))
})
