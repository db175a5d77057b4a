import Fastify from 'fastify'
import { expectAssignable, expectError, expectType } from 'tsd'
import longPollChatDefault, {
  longPollChat, MemoryStore, type BroadcastResult, type LongPollStats, type MailboxStore, type Member,
  type Message, type PublishResult
} from '..'

const app = Fastify()
app.register(longPollChat, { prefix: '/chat', pollTimeout: 10_000, rateLimit: false })
app.register(longPollChatDefault, {
  store: new MemoryStore(),
  rateLimit: { max: 5, timeWindow: 1000 },
  authenticate: async (request) => request.headers['x-user'] !== undefined ? { profile: { name: 'x' } } : false,
  onMessage: (message) => message.data === 'bad' ? false : { data: { wrapped: message.data } },
  onSessionEnd: (session) => { expectType<'expired' | 'ended'>(session.reason) }
})

// Wrong option types are refused.
expectError(app.register(longPollChat, { pollTimeout: '1000' }))
expectError(app.register(longPollChat, { rateLimit: true }))
expectError(app.register(longPollChat, { store: {} }))

// The decorator is typed through `declare module 'fastify'`.
expectType<Promise<BroadcastResult>>(app.longPoll.broadcast({ text: 'hi' }))
expectType<Promise<BroadcastResult>>(app.longPoll.broadcast('hi', { room: 'lobby' }))
expectType<Promise<PublishResult>>(app.longPoll.send('session-id', { text: 'hi' }))
expectType<Promise<Member[]>>(app.longPoll.members())
expectType<Promise<Member[]>>(app.longPoll.members('lobby'))
expectType<Promise<LongPollStats>>(app.longPoll.stats())
expectType<Promise<boolean>>(app.longPoll.endSession('session-id'))
expectError(app.longPoll.broadcast({}, { room: 1 }))
expectError(app.longPoll.send(1, {}))

expectAssignable<MailboxStore>(new MemoryStore())
const message: Message<{ text: string }> = { id: 'a', type: 'message', from: null, room: null, to: null, data: { text: 't' }, ts: 1 }
expectType<{ text: string }>(message.data)
expectError<Message>({ id: 'a', type: 'other', from: null, room: null, to: null, data: 1, ts: 1 })
