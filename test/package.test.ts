/**
 * The built package as its consumers load it: CommonJS `require` and ESM `import` of the main
 * entry and the subpaths, through the package's own name (exports map), from dist/.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = join(__dirname, '..')
const browserBuild = join(root, 'dist/browser/client.js')

t.before(() => {
  const built = ['dist/lib/index.js', 'dist/lib/index.mjs', 'dist/lib/client/index.js', 'dist/lib/client/index.mjs', 'dist/browser/client.js']
  if (!built.every((file) => existsSync(join(root, file)))) {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' })
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

t.test('ESM consumers get the plugin as the default export, one instance with CommonJS', async (t) => {
  const out = run(['--input-type=module', '-e', `
    import plugin, { longPollChat, MemoryStore } from 'fastify-long-poll-chat'
    import { createRequire } from 'node:module'
    const cjs = createRequire(import.meta.url)('fastify-long-poll-chat')
    console.log(plugin === longPollChat, longPollChat === cjs.longPollChat, MemoryStore === cjs.MemoryStore)`])
  t.equal(out, 'true true true')
})

t.test('the client entry: CommonJS require and ESM import (default: createChatClient)', async (t) => {
  const cjs = run(['-e', `
    const m = require('fastify-long-poll-chat/client')
    console.log(typeof m.createChatClient, typeof m.ChatClient, typeof m.ChatClientError, m.default === m.createChatClient)`])
  t.equal(cjs, 'function function function true')
  const esm = run(['--input-type=module', '-e', `
    import createChatClient, { createChatClient as named, ChatClientError } from 'fastify-long-poll-chat/client'
    console.log(createChatClient === named, new ChatClientError('m', 'X', 400).statusCode)`])
  t.equal(esm, 'true 400')
})

t.test('the browser build of the client is one standalone ES module', async (t) => {
  const source = readFileSync(browserBuild, 'utf8')
  t.notMatch(source, /^\s*import[\s{*]/m, 'no import statement')
  t.notMatch(source, /\brequire\(/, 'no require')
  t.notMatch(source, /\bimport\(/, 'no dynamic import')
  const out = run(['--no-warnings', '--input-type=module', '-e', `
    const m = await import(${JSON.stringify('file://' + browserBuild)})
    console.log(Object.keys(m).sort().join(), m.default === m.createChatClient)`])
  t.equal(out, 'ChatClient,ChatClientError,MEMBER_PAGES,createChatClient,default true', 'its exports')
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

t.test('the npm tarball carries the protocol document', async (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })
  const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path)
  t.ok(files.includes('docs/PROTOCOL.md'), 'docs/PROTOCOL.md is in the package')
  t.ok(files.includes('README.md'), 'README.md is in the package')
})
