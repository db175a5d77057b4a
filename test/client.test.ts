/**
 * The client against a real server on 127.0.0.1, port 0: exchange between clients, the async
 * iterator, errors from the server, `missed`, re-registration on 401, 409, refused registration
 * and close(). Resilience (restarts, lost responses, 503, outages) is in client-resilience.test.ts.
 */
import t, { type Test } from 'tap'
import { createChatClient, ChatClientError, type ChatClient, type ChatClientOptions, type ChatMessage, type ChatState } from '../lib/client.js'
import type { Message } from '../types/index.js'
import { startServer } from './helpers/client.js'
import { sleep } from './helpers/wait.js'

interface Text { text: string }
interface Name extends Record<string, unknown> { name: string }

// The client's message type is written without importing the server's types: keep the two equal.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const wireTypesAgree: Same<ChatMessage<unknown, Record<string, unknown>>['id' | 'from' | 'room' | 'to' | 'ts' | 'type'], Message['id' | 'from' | 'room' | 'to' | 'ts' | 'type']> = true

const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => { unhandled.push(reason) })

function client<T = Text> (t: Test, url: string, name: string, rooms: string[] = ['lobby'], extra: Partial<ChatClientOptions<Name>> = {}): ChatClient<T, Name> {
  const chat = createChatClient<T, Name>({ url, profile: { name }, rooms, ...extra })
  t.teardown(() => chat.close())
  return chat
}

/** Resolves with the first `n` messages the client hands over (through `on('message')`). */
function collect<T> (chat: ChatClient<T, Name>, n: number, filter: (m: ChatMessage<T, Name>) => boolean = () => true): Promise<Array<ChatMessage<T, Name>>> {
  const got: Array<ChatMessage<T, Name>> = []
  return new Promise(resolve => {
    const off = chat.on('message', m => {
      if (!filter(m)) return
      got.push(m)
      if (got.length === n) {
        off()
        resolve(got)
      }
    })
  })
}

function once<K extends 'session' | 'missed' | 'superseded' | 'state' | 'retrying'> (chat: ChatClient<any, any>, type: K, pred: (e: any) => boolean = () => true): Promise<any> {
  return new Promise(resolve => {
    const off = chat.on(type, (e: unknown) => {
      if (!pred(e)) return
      off()
      resolve(e)
    })
  })
}

const isText = (m: ChatMessage<Text, Name>): boolean => m.type === 'message'

t.test('two clients exchange room and direct messages, see joins and members', { timeout: 15_000 }, async (t) => {
  t.equal(wireTypesAgree, true)
  const { url } = await startServer(t)
  const ada = client(t, url, 'Ada')
  const states: ChatState[] = [ada.state]
  ada.on('state', e => states.push(e.state))
  const adaSession = once(ada, 'session')
  await ada.ready()
  t.match(await adaSession, { id: ada.id, previousId: null })
  const adaSees = collect(ada, 4)

  const bob = client(t, url, 'Bob')
  await bob.ready()
  t.not(ada.id, bob.id)
  const bobSees = collect(bob, 1, isText)

  const sent = await ada.send({ text: 'hi Bob' }, { room: 'lobby' })
  t.match(sent, { id: String, ts: Number })
  await bob.send({ text: 'hi Ada (dm)' }, { to: ada.id as string })

  const adaGot = await adaSees
  t.same(adaGot.map(m => [m.type, m.from]), [
    ['join', ada.id], ['join', bob.id], ['message', ada.id], ['message', bob.id]
  ], 'joins, own room message, then the direct message, in order')
  t.same(adaGot[1].data, { name: 'Bob' }, 'a join carries the profile')
  t.equal(adaGot[2].id, sent.id)
  t.match(adaGot[3], { to: ada.id, room: null, data: { text: 'hi Ada (dm)' } })

  const [fromAda] = await bobSees
  t.match(fromAda, { type: 'message', from: ada.id, room: 'lobby', data: { text: 'hi Bob' } })

  const members = await bob.members('lobby')
  t.same(members.map(m => m.profile?.name).sort(), ['Ada', 'Bob'])
  t.same(states, ['connecting', 'live'], 'connecting, then live')
  t.equal(ada.state, 'live')
})

t.test('join/leave rooms, the async iterator, and errors carrying the server code', { timeout: 15_000 }, async (t) => {
  const { url } = await startServer(t)
  const ada = client(t, url, 'Ada', [])
  const bob = client(t, url, 'Bob', [])
  await Promise.all([ada.ready(), bob.ready()])
  await ada.join('den')
  await ada.join('den')
  t.same(ada.joinedRooms, ['den'])

  const err = await bob.send({ text: 'let me in' }, { room: 'den' }).catch((e: unknown) => e)
  t.ok(err instanceof ChatClientError)
  t.match(err, { statusCode: 403, code: 'LONGPOLL_NOT_A_MEMBER' })
  await t.rejects(bob.send({ text: '?' }, { to: 'nobody' }), { statusCode: 404, code: 'LONGPOLL_NO_SUCH_SESSION' })
  await t.rejects(bob.members('den'), { statusCode: 403, code: 'LONGPOLL_NOT_A_MEMBER' })
  t.match(await bob.join('bad room!').catch((e: unknown) => e), { statusCode: 400, code: String })

  await bob.join('den')
  const seen: Array<ChatMessage<Text, Name>> = []
  for await (const m of ada) {
    seen.push(m)
    if (m.type === 'join' && m.from === bob.id) {
      for (let i = 0; i < 3; i++) await bob.send({ text: `n${i}` }, { room: 'den' })
      await bob.leave('den')
    }
    if (m.type === 'leave') break
  }
  t.same(seen.map(m => m.type === 'message' ? m.data.text : m.type), ['join', 'join', 'n0', 'n1', 'n2', 'leave'])
  t.same(bob.joinedRooms, [])

  // Messages that arrive while nobody consumes them wait for the next consumer.
  await bob.join('den')
  await sleep(200)
  const iterator = ada[Symbol.asyncIterator]()
  const next = await iterator.next()
  t.match(next, { done: false, value: { type: 'join', from: bob.id } }, 'the join that arrived between two iterations is not lost')
  await iterator.return?.()
})

t.test('reports missed messages', { timeout: 15_000 }, async (t) => {
  const { app, url } = await startServer(t, { maxMailboxMessages: 2 })
  // Holds each poll back 300 ms before it leaves, so that the mailbox overflows meanwhile.
  const slowFetch: typeof fetch = async (input, init) => {
    if (String(input).includes('/poll')) await sleep(300)
    return await fetch(input, init)
  }
  const ada = client(t, url, 'Ada', [], { fetch: slowFetch })
  const missed = once(ada, 'missed')
  const got = collect(ada, 2)
  await ada.ready()
  for (let i = 1; i <= 5; i++) await app.longPoll.broadcast({ text: `b${i}` })
  t.same(await missed, { count: 3 })
  t.same((await got).map(m => m.data), [{ text: 'b4' }, { text: 'b5' }])
})

t.test('re-registers when the server forgot the session, and rejoins its rooms', { timeout: 15_000 }, async (t) => {
  const { app, url } = await startServer(t)
  const ada = client(t, url, 'Ada', ['lobby'])
  await ada.ready()
  await ada.join('den')
  const first = ada.id as string
  const again = once(ada, 'session')
  t.equal(await app.longPoll.endSession(first), true)
  const e = await again
  t.equal(e.previousId, first)
  t.not(e.id, first)
  t.equal(ada.id, e.id)
  const members = await app.longPoll.members('den')
  t.same(members.map(m => m.id), [ada.id], 'rejoined the room it had joined')
  const got = collect(ada, 1, isText)
  await app.longPoll.broadcast({ text: 'still here?' }, { room: 'lobby' })
  t.same((await got)[0].data, { text: 'still here?' })

  // A send with a token the server no longer knows registers again and goes through.
  await app.longPoll.endSession(ada.id as string)
  const sent = await ada.send({ text: 'after expiry' }, { room: 'lobby' })
  t.match(sent, { id: String })
})

t.test('409: a newer poller of the same session stops the client with an event', { timeout: 15_000 }, async (t) => {
  const { app, url } = await startServer(t)
  const first = client(t, url, 'Ada')
  await first.ready()
  await sleep(100)
  const superseded = once(first, 'superseded')
  const closedState = once(first, 'state', e => e.state === 'closed')
  const second = client(t, url, 'Ada', ['lobby'], { session: first.session ?? undefined })
  t.equal(second.id, first.id, 'resumes the same session')
  const ev = await superseded
  t.match(ev.error, { statusCode: 409, code: 'LONGPOLL_POLL_SUPERSEDED' })
  t.match(await closedState, { state: 'closed', reason: 'superseded' })
  t.equal(first.closeReason, 'superseded')
  await first.close()
  t.equal(await app.longPoll.members().then(m => m.length), 1, 'the session was not ended by the stopped client')
  const got = collect(second, 1, isText)
  await app.longPoll.broadcast({ text: 'to the survivor' })
  t.same((await got)[0].data, { text: 'to the survivor' })
  await t.rejects(first.send({ text: 'x' }), { code: 'LONGPOLL_CLIENT_CLOSED' })
})

t.test('close() aborts the held poll, ends the session, and ends iterations', { timeout: 15_000 }, async (t) => {
  const { app, url } = await startServer(t, { pollTimeout: 20_000 })
  const ada = client(t, url, 'Ada')
  const bob = client(t, url, 'Bob')
  await Promise.all([ada.ready(), bob.ready()])
  await sleep(100)
  t.equal((await app.longPoll.stats()).heldPolls, 2)
  const bobSeesLeave = collect(bob, 1, m => m.type === 'leave')
  const iteration = (async () => {
    let n = 0
    for await (const m of ada) if (m.type === 'message') n++
    return n
  })()
  const started = Date.now()
  await ada.close()
  t.ok(Date.now() - started < 2000, 'close does not wait for the poll to time out')
  t.equal(ada.state, 'closed')
  t.equal(ada.closeReason, 'closed')
  t.equal(await iteration, 0, 'the iteration ended')
  t.same((await app.longPoll.members()).map(m => m.id), [bob.id], 'the session is gone')
  t.match((await bobSeesLeave)[0], { type: 'leave', from: ada.id, data: { name: 'Ada' } })
  await sleep(100)
  t.equal((await app.longPoll.stats()).heldPolls, 1, 'only Bob polls')
  await t.rejects(ada.send({ text: 'x' }, { room: 'lobby' }), { code: 'LONGPOLL_CLIENT_CLOSED' })
  await ada.close()
})

t.test('a refused registration closes the client', { timeout: 15_000 }, async (t) => {
  const { url } = await startServer(t, { authenticate: (req) => req.headers['x-key'] === 'open sesame' })
  const nope = client(t, url, 'Eve')
  const errors: Error[] = []
  nope.on('error', e => errors.push(e))
  await t.rejects(nope.ready(), { code: 'LONGPOLL_CLIENT_CLOSED' })
  t.equal(nope.state, 'closed')
  t.equal(nope.closeReason, 'refused')
  t.match(errors, [{ code: 'LONGPOLL_REGISTER_REFUSED', statusCode: 401 }])

  const yes = client(t, url, 'Ada', ['lobby'], { registerHeaders: async () => ({ 'x-key': 'open sesame' }) })
  await yes.ready()
  t.equal(yes.state, 'live')
})

t.test('a throwing listener does not stop delivery', { timeout: 15_000 }, async (t) => {
  const { app, url } = await startServer(t)
  const ada = client(t, url, 'Ada', [])
  const errors: Error[] = []
  ada.on('error', e => errors.push(e))
  ada.on('message', () => { throw new Error('app bug') })
  const got = collect(ada, 2)
  await ada.ready()
  await app.longPoll.broadcast({ text: 'one' })
  await app.longPoll.broadcast({ text: 'two' })
  t.same((await got).map(m => m.data), [{ text: 'one' }, { text: 'two' }])
  t.equal(errors.length, 2)
  t.equal(errors[0].message, 'app bug')
})

t.test('calls fetch as a plain function (browsers throw "Illegal invocation" otherwise)', { timeout: 15_000 }, async (t) => {
  const { url } = await startServer(t)
  let calls = 0
  const strictFetch = function (this: unknown, input: string | URL | Request, init?: RequestInit): Promise<Response> {
    if (this !== undefined && this !== globalThis) throw new TypeError('Illegal invocation')
    calls++
    return fetch(input, init)
  } as typeof fetch
  const ada = client(t, url, 'Ada', [], { fetch: strictFetch })
  await ada.ready()
  await ada.join('den')
  t.equal(ada.state, 'live')
  t.ok(calls >= 2)
})

t.test('no unhandled rejection in the whole file', async (t) => {
  await sleep(50)
  t.same(unhandled, [])
})
