/** Shared setup of the client tests against a real server on 127.0.0.1. */
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createChatClient, type ChatClient, type ChatClientOptions, type ChatMessage } from '../../lib/client.js'
import type { LongPollChatOptions } from '../../types/index.js'
import { start } from './server.js'

export interface Num { n: number }

export type AppMessage = Extract<ChatMessage<Num>, { type: 'message' }>

/**
 * The plugin under /chat with a 2 s poll timeout, listening on 127.0.0.1 (`port` 0: any free
 * port; a given one to restart a server where a client expects it).
 */
export async function startServer (t: Test, options: LongPollChatOptions = {}, port = 0): Promise<{ app: FastifyInstance, port: number, url: string }> {
  // forceCloseConnections: a poll aborted right after its connection opened leaves a connection
  // that never sends a request, which the default ('idle') does not close: app.close() would wait.
  const s = await start(t, { prefix: '/chat', pollTimeout: 2000, ...options }, { listen: true, port, fastify: { forceCloseConnections: true } })
  const listening = s.port as number
  return { app: s.app, port: listening, url: `http://127.0.0.1:${listening}/chat` }
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
