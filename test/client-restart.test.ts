/**
 * The client when its server goes away, on 127.0.0.1: a restart mid-poll on the same port, and a
 * 5-second outage (a bounded number of requests, then back by itself). Both register again on 401.
 */
import t from 'tap'
import type { ChatClient, ChatState } from '../lib/client.js'
import { client, collect, startServer, type Num } from './helpers/client.js'
import { sleep } from './helpers/wait.js'

const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => { unhandled.push(reason) })

function nextSession (chat: ChatClient<Num>): Promise<{ id: string, previousId: string | null }> {
  return new Promise(resolve => { const off = chat.on('session', e => { off(); resolve(e) }) })
}

t.test('the server restarts mid-poll on the same port: the client registers again and goes on', { timeout: 20_000 }, async (t) => {
  const first = await startServer(t)
  const chat = client(t, { url: first.url, rooms: ['lobby'] })
  const states: ChatState[] = []
  chat.on('state', e => states.push(e.state))
  await chat.ready()
  const oldId = chat.id
  await sleep(100)
  t.equal((await first.app.longPoll.stats()).heldPolls, 1, 'a poll is held')

  const again = nextSession(chat)
  await first.app.close()
  await sleep(300)
  const second = await startServer(t, {}, first.port)
  const e = await again
  t.equal(e.previousId, oldId)
  t.not(e.id, oldId)
  t.same((await second.app.longPoll.members('lobby')).map(m => m.id), [e.id], 'rejoined its room on the new server')
  const got = collect(chat, 1)
  await sleep(50)
  await second.app.longPoll.broadcast({ n: 1 }, { room: 'lobby' })
  t.same((await got)[0].data, { n: 1 })
  t.equal(chat.state, 'live')
  t.same(states.slice(0, 2), ['live', 'retrying'])
  t.ok(states.includes('connecting'), 'went through connecting to register again')
})

t.test('a 5-second outage: a bounded number of requests, then back by itself', { timeout: 20_000 }, async (t) => {
  const first = await startServer(t)
  let requests = 0
  const counting: typeof fetch = async (input, init) => {
    requests++
    return await fetch(input, init)
  }
  const chat = client(t, { url: first.url, rooms: ['lobby'], fetch: counting, retry: { max: 2000 } })
  await chat.ready()
  await sleep(100)

  const before = requests
  await first.app.close()
  await sleep(5000)
  const during = requests - before
  t.ok(during >= 2, `it kept trying (${during} requests)`)
  t.ok(during <= 15, `no tight loop: ${during} requests in 5 s`)
  t.equal(chat.state, 'retrying')

  const back = nextSession(chat)
  const second = await startServer(t, {}, first.port)
  const e = await back
  t.same((await second.app.longPoll.members()).map(m => m.id), [e.id])
  t.equal(chat.state, 'live')
})

t.test('no unhandled rejection in the whole file', async (t) => {
  await sleep(50)
  t.same(unhandled, [])
})
