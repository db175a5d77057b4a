/**
 * Type tests of the client as its users get it (`fastify-long-poll-chat/client`, through the
 * package's exports map, from dist/): message narrowing on `type`, `send` targets (one at most),
 * history and member pages, event payloads, the generic data and profile types, and the client
 * types' fit with the wire types.
 */
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import createChatClientDefault, {
  ChatClient, ChatClientError, createChatClient, MEMBER_PAGES, type ChatMember, type ChatMessage, type ChatSession,
  type ChatState, type CloseReason, type HistoryPage, type MembersPage, type Profile, type SendResult, type SendTarget
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
  // Present (true) on a message sent to a person (`toUser`).
  expectType<true | undefined>(m.toUser)
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

// send: data of type T; a room, one session (`to`), a person (`toUser`), or no target (every
// session); never two of them.
expectType<Promise<SendResult>>(chat.send({ text: 'hi' }))
expectType<Promise<SendResult>>(chat.send({ text: 'hi' }, { room: 'lobby' }))
expectType<Promise<SendResult>>(chat.send({ text: 'hi' }, { to: 'session-id' }))
expectType<Promise<SendResult>>(chat.send({ text: 'hi' }, { toUser: 'session-id' }))
expectAssignable<SendTarget>({ toUser: 'session-id' })
expectError(chat.send({ text: 'hi' }, { room: 'lobby', to: 'session-id' }))
expectError(chat.send({ text: 'hi' }, { room: 'lobby', toUser: 'session-id' }))
expectError(chat.send({ text: 'hi' }, { to: 'session-id', toUser: 'session-id' }))
expectError(chat.send({ text: 'hi' }, { room: 'lobby', to: 'a', toUser: 'b' }))
expectError(chat.send({ text: 'hi' }, { toUser: 1 }))
expectNotAssignable<SendTarget>({ to: 'a', toUser: 'b' })
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

// Joining with history resolves with the room's recent messages; history and member pages.
expectType<Promise<Array<ChatMessage<Text, Person>>>>(chat.join('lobby', { history: 20 }))
expectError(chat.join('lobby', { history: '20' }))
expectError(chat.join('lobby', { limit: 20 }))
expectType<Promise<HistoryPage<Text, Person>>>(chat.history('lobby'))
expectType<Promise<HistoryPage<Text, Person>>>(chat.history('lobby', { before: 'cursor', limit: 10 }))
expectError(chat.history('lobby', { after: 'cursor' }))
expectError(chat.history('lobby', { limit: '10' }))
expectType<Promise<MembersPage<Person>>>(chat.membersPage('lobby'))
expectType<Promise<MembersPage<Person>>>(chat.membersPage('lobby', { after: 'cursor', limit: 10 }))
expectError(chat.membersPage('lobby', { before: 'cursor' }))
async function pages (): Promise<void> {
  const page = await chat.history('lobby')
  expectType<string | null>(page.next)
  const [m] = page.messages
  if (m.type === 'message') expectType<Text>(m.data)
  else expectType<Person | null>(m.data)
  const members = await chat.membersPage('lobby', { limit: 5 })
  expectType<string | null>(members.next)
  expectType<Person | null>(members.members[0].profile)
  const recent = await chat.join('den', { history: 5 })
  expectType<string>(recent[0].id)
}
expectType<Promise<void>>(pages())
expectAssignable<number>(MEMBER_PAGES)
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
