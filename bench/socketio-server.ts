/**
 * socket.io restricted to its HTTP long-polling transport, doing what the benchmark asks of every
 * server: server-side broadcast to everyone (`io.emit`), rooms joined at connection (handshake
 * query `rooms=a,b`), and a client `send` event relayed to a room, sender included
 * (`io.to(room).emit`), or with room null to every other client (`socket.broadcast.emit`: the
 * fan-out's publisher), acknowledged so that the load's senders run a closed loop.
 */
import http from 'node:http'
import { Server } from 'socket.io'
import type { BenchServer } from './server-proc.js'

export async function createSocketIoServer (opts: { pollTimeout: number }): Promise<BenchServer> {
  const server = http.createServer()
  server.keepAliveTimeout = 72_000
  const io = new Server(server, {
    transports: ['polling'],
    serveClient: false,
    // A poll is held until a packet or the next ping; keep that near the others' hold time.
    pingInterval: opts.pollTimeout,
    pingTimeout: 20_000,
    maxHttpBufferSize: 1e6
  })
  io.on('connection', (socket) => {
    const rooms = socket.handshake.query.rooms
    if (typeof rooms === 'string' && rooms.length > 0) socket.join(rooms.split(','))
    socket.on('send', (room: unknown, data: unknown, ack: unknown) => {
      if (room === null) socket.broadcast.emit('m', data)
      else if (typeof room === 'string' && socket.rooms.has(room)) io.to(room).emit('m', data)
      if (typeof ack === 'function') ack(true)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port

  return {
    port,
    http: server,
    broadcast (data) { io.emit('m', data) },
    held () {
      // A connected client's poll is held while its polling transport is writable.
      const clients = (io.engine as unknown as { clients: Record<string, { transport: { writable: boolean } }> }).clients
      let n = 0
      for (const id in clients) if (clients[id].transport.writable) n++
      return n
    },
    sessions: () => io.engine.clientsCount,
    close: () => new Promise<void>((resolve) => {
      io.close(() => resolve())
    })
  }
}
