/**
 * A lossy HTTP proxy on 127.0.0.1 for fault tests: it forwards every request to the server and
 * loses some poll responses on the way back.
 *
 * - `after-response`: every `every`-th poll response is read in full from the server (so the
 *   server did send it), then lost: alternately not forwarded at all, or cut in the middle of the
 *   body; either way the client's connection is destroyed and its request fails.
 * - `cut-early`: every `every`-th poll is cut, both ways, a few milliseconds after it was
 *   forwarded (`cutAfterMs`), whether or not the server has answered yet: the server sees a
 *   client that went away, possibly while a wake-up is answering it.
 * Other requests pass unchanged. Each proxied request uses its own upstream connection; with
 * several target ports, requests go to them in turn (several instances, no sticky sessions).
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface LossyProxyOptions {
  mode: 'after-response' | 'cut-early'
  /** Lose every n-th poll of each client (clients told apart by their authorization header). */
  every: number
  /** cut-early: delay before the cut, per lost poll (its index among the lost ones). */
  cutAfterMs?: (index: number) => number
}

export interface LossyProxyStats {
  /** Poll requests forwarded. */
  polls: number
  /** Poll responses lost after the server sent them in full. */
  lostResponses: number
  /** Messages those lost responses carried. */
  lostMessages: number
  /** Polls cut before the server's response reached the proxy (cut-early). */
  cutEarly: number
}

export interface LossyProxy {
  port: number
  stats: LossyProxyStats
  close (): Promise<void>
}

function countMessages (body: Buffer): number {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { messages?: unknown[] }
    return Array.isArray(parsed.messages) ? parsed.messages.length : 0
  } catch {
    return 0
  }
}

export async function lossyProxy (targets: number | number[], opts: LossyProxyOptions): Promise<LossyProxy> {
  const ports = Array.isArray(targets) ? targets : [targets]
  let next = 0
  const stats: LossyProxyStats = { polls: 0, lostResponses: 0, lostMessages: 0, cutEarly: 0 }
  const sockets = new Set<Socket>()
  let lostIndex = 0
  /** Polls forwarded per client (authorization header). */
  const perClient = new Map<string, number>()

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const isPoll = (req.url ?? '').includes('/poll')
    const client = String(req.headers.authorization)
    const n = isPoll ? (perClient.get(client) ?? 0) + 1 : 0
    if (isPoll) {
      perClient.set(client, n)
      stats.polls++
    }
    const lose = isPoll && n % opts.every === 0
    const index = lose ? lostIndex++ : -1
    const target = ports[next++ % ports.length]
    const up = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers, agent: false })
    let answered = false
    up.on('error', () => { res.destroy() })
    // The client went away (or we cut it): drop the upstream request too.
    res.on('close', () => { if (!res.writableFinished) up.destroy() })

    if (lose && opts.mode === 'cut-early') {
      const timer = setTimeout(() => {
        if (!answered) stats.cutEarly++
        up.destroy()
        res.destroy()
      }, opts.cutAfterMs?.(index) ?? 0)
      res.on('close', () => clearTimeout(timer))
    }

    up.on('response', (ur) => {
      answered = true
      if (!lose || opts.mode === 'cut-early') {
        res.writeHead(ur.statusCode ?? 502, ur.headers)
        ur.pipe(res)
        return
      }
      const chunks: Buffer[] = []
      ur.on('data', (c: Buffer) => chunks.push(c))
      ur.on('end', () => {
        const body = Buffer.concat(chunks)
        stats.lostResponses++
        stats.lostMessages += countMessages(body)
        if (index % 2 === 1) {
          // Cut in the middle of the body: the headers promise more than arrives.
          res.writeHead(ur.statusCode ?? 502, ur.headers)
          res.write(body.subarray(0, body.length >> 1))
        }
        res.socket?.destroy()
      })
    })
    req.pipe(up)
  }

  const server = createServer(forward)
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    stats,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  }
}
