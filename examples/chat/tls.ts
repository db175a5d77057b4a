/**
 * A self-signed certificate for `localhost`, made at start with node:crypto alone (no dependency,
 * no openssl binary), for running the example chat on HTTP/2 (`HTTP2=1 npm run example`) and for
 * the HTTP/2 tests. Browsers only speak HTTP/2 over TLS; they will warn about this certificate
 * (nobody vouches for it), and it is only good for trying things on this machine.
 *
 * It is an X.509 v3 certificate written in DER by hand: an ECDSA P-256 key, signed with SHA-256,
 * subject and issuer `CN=localhost`, subjectAltName `localhost`, `127.0.0.1` and `::1`, extended
 * key usage serverAuth, valid from a day ago for `days` days.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'

/** One DER element: tag, length, content. */
function der (tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content)
  let length: Buffer
  if (body.length < 0x80) {
    length = Buffer.from([body.length])
  } else {
    const bytes: number[] = []
    for (let n = body.length; n > 0; n >>= 8) bytes.unshift(n & 0xff)
    length = Buffer.from([0x80 | bytes.length, ...bytes])
  }
  return Buffer.concat([Buffer.from([tag]), length, body])
}

const sequence = (...content: Buffer[]): Buffer => der(0x30, ...content)
const set = (...content: Buffer[]): Buffer => der(0x31, ...content)

function oid (dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]]
  const bytes = [40 * a + b]
  for (const n of rest) {
    const digits = [n & 0x7f]
    for (let v = n >> 7; v > 0; v >>= 7) digits.unshift((v & 0x7f) | 0x80)
    bytes.push(...digits)
  }
  return der(0x06, Buffer.from(bytes))
}

/** UTCTime, `YYMMDDHHMMSSZ` (good until 2049). */
function utcTime (date: Date): Buffer {
  const text = date.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'
  return der(0x17, Buffer.from(text, 'ascii'))
}

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'))

function extension (id: string, value: Buffer): Buffer {
  return sequence(oid(id), der(0x04, value))
}

export interface Certificate {
  /** PEM private key (PKCS#8). */
  key: string
  /** PEM certificate. */
  cert: string
}

/** A fresh key and a self-signed certificate for localhost, 127.0.0.1 and ::1. */
export function selfSignedCertificate (days = 30): Certificate {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const serial = randomBytes(16)
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01 // positive, and no leading zero byte needed
  const name = sequence(set(sequence(oid('2.5.4.3'), der(0x0c, Buffer.from('localhost')))))
  const now = Date.now()
  const altNames = sequence(
    der(0x82, Buffer.from('localhost')),
    der(0x87, Buffer.from([127, 0, 0, 1])),
    der(0x87, Buffer.from([...new Array<number>(15).fill(0), 1]))
  )
  const tbs = sequence(
    der(0xa0, der(0x02, Buffer.from([2]))), // version 3
    der(0x02, serial),
    ECDSA_WITH_SHA256,
    name,
    sequence(utcTime(new Date(now - 86_400_000)), utcTime(new Date(now + days * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, sequence(
      extension('2.5.29.17', altNames),
      extension('2.5.29.37', sequence(oid('1.3.6.1.5.5.7.3.1')))
    ))
  )
  const signature = sign('sha256', tbs, privateKey)
  const certificate = sequence(tbs, ECDSA_WITH_SHA256, der(0x03, Buffer.from([0]), signature))
  const lines = certificate.toString('base64').match(/.{1,64}/g) ?? []
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`
  }
}
