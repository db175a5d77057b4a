/** Shared setup of the client tests against a real server on 127.0.0.1. */
import type { Test } from 'tap'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import longPollChat from '../../lib/index.js'
import { createChatClient, type ChatClient, type ChatClientOptions, type ChatMessage } from '../../lib/client.js'
import type { LongPollChatOptions } from '../../types/index.js'

export interface Num { n: number }

export type AppMessage = Extract<ChatMessage<Num>, { type: 'message' }>

export const delay = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

export async function until (cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await delay(25)
}

export async function startServer (t: Test, port = 0, options: LongPollChatOptions = {}): Promise<{ app: FastifyInstance, port: number, url: string }> {
  // forceCloseConnections: see test/client.test.ts (a connection aborted before its first request).
  const app = Fastify({ forceCloseConnections: true })
  await app.register(longPollChat, { prefix: '/chat', pollTimeout: 2000, ...options })
  await app.listen({ port, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address() as AddressInfo
  return { app, port: address.port, url: `http://127.0.0.1:${address.port}/chat` }
}

export function client (t: Test, options: ChatClientOptions): ChatClient<Num> {
  const chat = createChatClient<Num>(options)
  t.teardown(() => chat.close())
  return chat
}

/** Resolves with the first `n` application messages. */
export function collect (chat: ChatClient<Num>, n: number): Promise<AppMessage[]> {
  const got: AppMessage[] = []
  return new Promise(resolve => {
    const off = chat.on('message', m => {
      if (m.type !== 'message') return
      got.push(m)
      if (got.length === n) {
        off()
        resolve(got)
      }
    })
  })
}
