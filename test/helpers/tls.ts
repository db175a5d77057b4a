/**
 * A self-signed certificate for 127.0.0.1/localhost, made once per test process with the
 * `openssl` command (no dependency), for the HTTP/2 tests (browsers and Node's http2 client
 * speak HTTP/2 over TLS only). `tlsSkip` is the reason to skip when openssl is missing.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const tlsSkip: false | string = spawnSync('openssl', ['version']).status === 0 ? false : 'openssl is not installed'

let made: { key: string, cert: string } | null = null

export function selfSigned (): { key: string, cert: string } {
  if (made !== null) return made
  const dir = mkdtempSync(join(tmpdir(), 'lpc-tls-'))
  try {
    const r = spawnSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')
    ], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`)
    made = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') }
    return made
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
