import Fastify, { type FastifyRequest } from 'fastify'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import longPollChatDefault, {
  longPollChat, MemoryStore, type AuthenticateResult, type AuthorizeAction, type BroadcastResult,
  type HistoryPage, type HookSession, type IncomingMessage, type LongPollChatOptions, type LongPollStats,
  type Member, type Message, type PublishResult, type SessionEndInfo
} from '..'

const app = Fastify()
app.register(longPollChat, { prefix: '/chat', pollTimeout: 10_000, rateLimit: false })
app.register(longPollChatDefault, {
  store: new MemoryStore(),
  rateLimit: { max: 5, timeWindow: 1000 },
  joinRateLimit: false,
  pageRateLimit: { max: 10, timeWindow: 10_000 },
  registerRateLimit: { max: 10, timeWindow: 60_000, key: (request, user) => user ?? request.ip },
  maxSessionsPerUser: 5,
  maxPollBytes: 1 << 20,
  presenceLimit: 50,
  membersPageSize: 20,
  historyPageSize: 20,
  responseTimeout: 5000,
  history: { maxMessages: 100, maxAge: 3_600_000 },
  authenticate: async (request) => request.headers['x-user'] !== undefined
    ? { user: 'u1', profile: { name: 'x' }, rooms: ['lobby'], context: { role: 'admin' } }
    : false,
  onMessage: (message) => message.data === 'bad' ? false : { data: { wrapped: message.data } },
  onSessionEnd: (session) => {
    expectType<'expired' | 'ended'>(session.reason)
    expectType<string | null>(session.user)
  }
})

// What authenticate may return.
expectAssignable<AuthenticateResult>(true)
expectAssignable<AuthenticateResult>(null)
expectAssignable<AuthenticateResult>({ user: 'alice', context: { admin: true } })
expectNotAssignable<AuthenticateResult>({ user: 5 })
expectNotAssignable<AuthenticateResult>({ rooms: 'lobby' })

// authorize: the action is a discriminated union on `kind`; `switch` narrows it.
const authorize: NonNullable<LongPollChatOptions['authorize']> = (session, action, request) => {
  expectType<HookSession>(session)
  expectType<string | null>(session.user)
  expectType<unknown>(session.context)
  expectType<FastifyRequest>(request)
  switch (action.kind) {
    case 'join':
      expectType<string>(action.room)
      expectType<'register' | 'route'>(action.via)
      return action.room.startsWith('team-') ? session.user !== null : true
    case 'members':
    case 'history':
      expectType<string>(action.room)
      return true
    case 'sendRoom':
      expectType<string>(action.room)
      expectType<unknown>(action.data)
      return true
    case 'sendSession':
      expectType<string>(action.to)
      return true
    case 'sendUser':
      expectType<string>(action.to)
      expectType<string | null>(action.user)
      return true
    case 'broadcast':
      expectType<unknown>(action.data)
      // @ts-expect-error a broadcast has no room
      return action.room === undefined
    default: {
      const never: never = action
      return never
    }
  }
}
app.register(longPollChat, { authorize })
app.register(longPollChat, { authorize: async () => true })
expectAssignable<AuthorizeAction>({ kind: 'join', room: 'r', via: 'register' })
expectNotAssignable<AuthorizeAction>({ kind: 'join', room: 'r' })
expectNotAssignable<AuthorizeAction>({ kind: 'kick', room: 'r' })

const incoming = null as unknown as IncomingMessage
expectType<string | null>(incoming.toUser)
expectType<string | null>(incoming.user)
const ended = null as unknown as SessionEndInfo
expectType<string[]>(ended.rooms)

// Wrong option types are refused.
expectError(app.register(longPollChat, { pollTimeout: '1000' }))
expectError(app.register(longPollChat, { rateLimit: true }))
expectError(app.register(longPollChat, { joinRateLimit: { max: '5', timeWindow: 1 } }))
expectError(app.register(longPollChat, { registerRateLimit: { max: 5, timeWindow: 1, key: 'ip' } }))
expectError(app.register(longPollChat, { history: true }))
expectError(app.register(longPollChat, { authorize: 'yes' }))
expectError(app.register(longPollChat, { store: {} }))

// The decorator is typed through `declare module 'fastify'`.
expectType<Promise<BroadcastResult>>(app.longPoll.broadcast({ text: 'hi' }))
expectType<Promise<BroadcastResult>>(app.longPoll.broadcast('hi', { room: 'lobby' }))
expectType<Promise<PublishResult>>(app.longPoll.send('session-id', { text: 'hi' }))
expectType<Promise<BroadcastResult>>(app.longPoll.sendToUser('alice', { text: 'hi' }))
expectType<Promise<Member[]>>(app.longPoll.members())
expectType<Promise<Member[]>>(app.longPoll.members('lobby'))
expectType<Promise<boolean>>(app.longPoll.join('session-id', 'lobby'))
expectType<Promise<boolean>>(app.longPoll.leave('session-id', 'lobby'))
expectType<Promise<Member[]>>(app.longPoll.userSessions('alice'))
expectType<Promise<boolean>>(app.longPoll.endSession('session-id'))
expectType<Promise<number>>(app.longPoll.endUser('alice'))
expectType<Promise<HistoryPage>>(app.longPoll.history('lobby'))
expectType<Promise<HistoryPage>>(app.longPoll.history('lobby', { before: '12', limit: 10 }))
expectType<Promise<LongPollStats>>(app.longPoll.stats())
expectError(app.longPoll.broadcast({}, { room: 1 }))
expectError(app.longPoll.send(1, {}))
expectError(app.longPoll.sendToUser(1, {}))
expectError(app.longPoll.history('lobby', { before: 12 }))

expectAssignable<NonNullable<LongPollChatOptions['store']>>(new MemoryStore())
const message: Message<{ text: string }> = { id: 'a', type: 'message', from: null, room: null, to: null, data: { text: 't' }, ts: 1 }
expectType<{ text: string }>(message.data)
expectAssignable<Message>({ id: 'a', type: 'message', from: null, room: null, to: 'x', toUser: true, data: 1, ts: 1 })
expectError<Message>({ id: 'a', type: 'other', from: null, room: null, to: null, data: 1, ts: 1 })
expectError<Message>({ id: 'a', type: 'message', from: null, room: null, to: null, toUser: false, data: 1, ts: 1 })
