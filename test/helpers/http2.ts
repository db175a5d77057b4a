/**
 * HTTP/2 for the Node tests: the plugin on Fastify's `http2: true` with TLS (the example's
 * self-signed certificate, made at start), and a `fetch` over one `node:http2` session, for the
 * client (Node's own fetch speaks HTTP/1.1 only). Browsers are tested over HTTP/2 in test/e2e/.
 */
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import longPollChat from '../../lib/index.js'
import type { LongPollChatOptions } from '../../types/index.js'
import { selfSignedCertificate, type Certificate } from '../../examples/chat/tls.js'

let certificate: Certificate | undefined

/** One certificate per test process (making one takes a few milliseconds, but why twice). */
export function testCertificate (): Certificate {
  certificate ??= selfSignedCertificate(1)
  return certificate
}

export interface Http2Server {
  app: FastifyInstance
  origin: string
  /** HTTP/2 sessions (connections) the server accepted. */
  sessions: () => number
}

/**
 * The plugin under /chat on HTTP/2 with TLS, 127.0.0.1, port 0; `before` may add hooks before it
 * listens.
 */
export async function startHttp2 (t: Test, options: LongPollChatOptions = {}, before?: (app: FastifyInstance) => void): Promise<Http2Server> {
  const { key, cert } = testCertificate()
  const app = Fastify({ http2: true, https: { key, cert, allowHTTP1: true }, forceCloseConnections: true }) as unknown as FastifyInstance
  before?.(app)
  await app.register(longPollChat, { prefix: '/chat', pollTimeout: 2000, ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  let sessions = 0
  app.server.on('session', () => { sessions++ })
  t.teardown(() => app.close())
  return { app, origin: `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`, sessions: () => sessions }
}

/** A fetch over one HTTP/2 session to `origin` (every request a stream of it), trusting `ca`. */
export function http2Fetch (t: Test, origin: string, ca: string): typeof fetch {
  let session: http2.ClientHttp2Session | null = null
  t.teardown(() => session?.close())
  return async (input, init = {}) => {
    if (session === null || session.closed || session.destroyed) {
      session = http2.connect(origin, { ca })
      session.on('error', () => {})
    }
    const url = new URL(String(input))
    const stream = session.request({
      ':method': init.method ?? 'GET',
      ':path': url.pathname + url.search,
      ...(init.headers as Record<string, string> | undefined)
    })
    return await new Promise<Response>((resolve, reject) => {
      const signal = init.signal
      const onAbort = (): void => {
        stream.close(http2.constants.NGHTTP2_CANCEL)
        reject(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }))
      }
      if (signal?.aborted === true) return onAbort()
      signal?.addEventListener('abort', onAbort)
      const chunks: Buffer[] = []
      let head: http2.IncomingHttpHeaders = {}
      stream.on('response', (h) => { head = h })
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        signal?.removeEventListener('abort', onAbort)
        const status = Number(head[':status'])
        if (!Number.isInteger(status)) return reject(new Error('HTTP/2 stream ended without a response'))
        const headers = new Headers()
        for (const [name, value] of Object.entries(head)) {
          if (!name.startsWith(':') && value !== undefined) headers.set(name, String(value))
        }
        resolve(new Response(status === 204 ? null : Buffer.concat(chunks), { status, headers }))
      })
      stream.on('error', (err) => {
        signal?.removeEventListener('abort', onAbort)
        reject(err)
      })
      stream.end(typeof init.body === 'string' ? init.body : undefined)
    })
  }
}
