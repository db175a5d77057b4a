/**
 * The client and the page's lifecycle events (lib/client/queue.ts `pageLifecycle`, as core.ts and
 * tabs.ts use it), with a window and a document of the test's own on globalThis, against a real
 * server on 127.0.0.1: `online` cuts a retry wait short; `pagehide` and `pageshow` mark the kept
 * session as left and taken again (a page that opens on it meanwhile is a reload, not a
 * duplicated tab: client-storage.test.ts); a closed
 * client stops listening.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createChatClient, type ChatClient } from '../lib/client.js'
import { collect, startServer, type Num } from './helpers/client.js'
import { fakePage } from './helpers/page.js'
import { MemoryStorage } from './helpers/tabs.js'
import { waitFor } from './helpers/wait.js'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

t.test('`online` cuts a retry wait short: the client registers as soon as the network is back', { timeout: 20_000 }, async (t) => {
  const p = fakePage(t)
  const port = await freePort()
  const retries: number[] = []
  const chat: ChatClient<Num> = p.run(() => createChatClient<Num>({ url: `http://127.0.0.1:${port}/chat`, retry: { min: 60_000, max: 60_000 } }))
  t.teardown(() => p.run(() => chat.close()))
  chat.on('retrying', e => { retries.push(e.delayMs) })
  await waitFor(() => retries.length === 1, 'the first failed registration', 5000)
  t.ok((retries[0] as number) >= 30_000, 'nothing listens yet: the client waits at least 30 s before it tries again')

  const { app } = await startServer(t, {}, port)
  p.window.dispatchEvent(new Event('online'))
  await chat.ready()
  t.equal(retries.length, 1, 'registered at the next attempt, made at once')
  const got = collect(chat, 1)
  await app.longPoll.broadcast({ n: 1 })
  t.same((await got).map(m => m.data.n), [1])
})

t.test('pagehide and pageshow mark the kept session as left and taken again; close() stops listening', { timeout: 20_000 }, async (t) => {
  const p = fakePage(t)
  const { url } = await startServer(t)
  const storage = new MemoryStorage()
  const chat = p.run(() => createChatClient<Num>({ url, persist: storage, name: 'page-test' }))
  await chat.ready()
  const open = (): unknown => (JSON.parse(storage.getItem('page-test') ?? '{}') as { open?: unknown }).open
  t.equal(open(), true, 'a page runs on the kept session')
  t.same([p.window.listeners, p.document.listeners], [3, 2], 'online, pagehide, pageshow on the window; freeze, resume on the document')

  p.window.dispatchEvent(new Event('pagehide'))
  t.equal(open(), false, 'hidden (a reload, a close, the back-forward cache): no page runs on it')
  p.window.dispatchEvent(new Event('pageshow'))
  t.equal(open(), true, 'shown again')
  p.document.dispatchEvent(new Event('freeze'))
  t.equal(open(), false, 'frozen (document): the same as hidden')
  p.document.dispatchEvent(new Event('resume'))
  t.equal(open(), true)

  await p.run(() => chat.close())
  t.same([p.window.listeners, p.document.listeners], [0, 0], 'a closed client listens to nothing')
})
