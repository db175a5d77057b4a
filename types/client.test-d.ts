/**
 * Type tests of the client as its users get it (`fastify-long-poll-chat/client`, through the
 * package's exports map, from dist/): message narrowing on `type`, `send` targets, event
 * payloads, the generic data and profile types, and the client types' fit with the wire types.
 */
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import createChatClientDefault, {
  ChatClient, ChatClientError, createChatClient, type ChatMember, type ChatMessage, type ChatSession,
  type ChatState, type CloseReason, type Profile, type SendResult
} from 'fastify-long-poll-chat/client'
import type { Member, Message } from 'fastify-long-poll-chat'

// Type aliases, not interfaces: a profile type must be assignable to Record<string, unknown>.
type Text = { text: string }
type Person = { name: string }

const chat = createChatClient<Text, Person>({ url: '/chat', profile: { name: 'Ada' }, rooms: ['lobby'] })
expectType<ChatClient<Text, Person>>(chat)
expectType<typeof createChatClient>(createChatClientDefault)
expectType<ChatClient<unknown, Profile>>(createChatClient({ url: '/chat' }))

// Options: the profile has the client's profile type; the url is required.
expectError(createChatClient<Text, Person>({ url: '/chat', profile: { nick: 'Ada' } }))
expectError(createChatClient({ rooms: ['lobby'] }))
expectError(createChatClient({ url: '/chat', wait: '1000' }))
createChatClient({ url: '/chat', registerHeaders: async () => ({ authorization: 'Bearer x' }) })

// Messages narrow on `type`: `data` is T for application messages, the profile for join/leave.
chat.on('message', (m) => {
  expectType<ChatMessage<Text, Person>>(m)
  expectType<string>(m.id)
  expectType<string | null>(m.from)
  expectType<string | null>(m.room)
  expectType<string | null>(m.to)
  expectType<number>(m.ts)
  if (m.type === 'message') {
    expectType<Text>(m.data)
  } else {
    expectType<'join' | 'leave'>(m.type)
    expectType<Person | null>(m.data)
    expectError(m.data?.text)
  }
})

// Async iteration yields the same messages.
async function iterate (): Promise<void> {
  for await (const m of chat) {
    expectType<ChatMessage<Text, Person>>(m)
    if (m.type === 'join') expectType<Person | null>(m.data)
  }
}
expectType<Promise<void>>(iterate())

// send: data of type T; a room, one session (`to`), or no target (every session); never both.
expectType<Promise<SendResult>>(chat.send({ text: 'hi' }))
expectType<Promise<SendResult>>(chat.send({ text: 'hi' }, { room: 'lobby' }))
expectType<Promise<SendResult>>(chat.send({ text: 'hi' }, { to: 'session-id' }))
expectError(chat.send({ text: 'hi' }, { room: 'lobby', to: 'session-id' }))
expectError(chat.send({ text: 'hi' }, {}))
expectError(chat.send({ text: 1 }))
expectError(chat.send({ text: 'hi' }, { room: 1 }))
async function sent (): Promise<void> {
  const result = await chat.send({ text: 'hi' })
  expectType<string>(result.id)
  expectType<number>(result.ts)
}
expectType<Promise<void>>(sent())

// Event payloads.
chat.on('session', (e) => {
  expectType<string>(e.id)
  expectType<string | null>(e.previousId)
})
chat.on('missed', (e) => { expectType<number>(e.count) })
chat.on('state', (e) => {
  expectType<ChatState>(e.state)
  expectType<ChatState>(e.previous)
  expectType<CloseReason | undefined>(e.reason)
  expectType<ChatClientError | undefined>(e.error)
})
chat.on('retrying', (e) => {
  expectType<number>(e.attempt)
  expectType<number>(e.delayMs)
  expectType<ChatClientError>(e.error)
})
chat.on('superseded', (e) => { expectType<ChatClientError>(e.error) })
chat.on('error', (e) => { expectType<Error>(e) })
expectType<() => void>(chat.on('missed', () => {}))
expectError(chat.on('nope', () => {}))
expectError(chat.on('missed', (e: { total: number }) => e))

// Errors carry the server's status and code.
const err = new ChatClientError('m', 'LONGPOLL_BAD_CURSOR', 400)
expectType<number | undefined>(err.statusCode)
expectType<string>(err.code)
expectType<number | undefined>(err.retryAfterMs)
expectAssignable<Error>(err)

// Members and the rest of the API, with the profile type.
expectType<Promise<Array<ChatMember<Person>>>>(chat.members('lobby'))
async function members (): Promise<void> {
  const [first] = await chat.members('lobby')
  expectType<Person | null>(first.profile)
  expectType<number>(first.lastSeen)
}
expectType<Promise<void>>(members())
expectType<Promise<void>>(chat.join('lobby'))
expectType<Promise<void>>(chat.leave('lobby'))
expectType<Promise<void>>(chat.close())
expectType<Promise<void>>(chat.ready())
expectType<string | null>(chat.id)
expectType<ChatSession | null>(chat.session)
expectType<ChatState>(chat.state)
expectType<CloseReason | null>(chat.closeReason)
expectType<string[]>(chat.joinedRooms)

// The client's types refine the wire types of the plugin's package.
expectAssignable<Message>({} as unknown as ChatMessage<Text, Person>)
expectType<Message['type']>({} as unknown as ChatMessage['type'])
expectAssignable<Member>({} as unknown as ChatMember<Person>)
expectNotAssignable<ChatMessage<Text>>({ id: 'a', type: 'message', from: null, room: null, to: null, data: 1, ts: 1 })
expectNotAssignable<ChatMessage>({ id: 'a', type: 'typing', from: null, room: null, to: null, data: null, ts: 1 })
