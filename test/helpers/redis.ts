/** Shared by the Redis tests. */
import { createServer } from 'node:net'

/** A TCP port on 127.0.0.1 that nothing listens on right now (for a private redis-server). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}
