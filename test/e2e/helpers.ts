/**
 * Helpers of the browser tests: Debian's chromium driven by playwright-core, and the example chat
 * server started in-process on 127.0.0.1, port 0.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import { buildChatApp, type ChatAppOptions } from '../../examples/chat/server.js'

export const RESULTS = join(__dirname, '..', '..', 'test-results')
mkdirSync(RESULTS, { recursive: true })

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'
]

/** The chromium binary: CHROMIUM_PATH, else `which chromium`. */
export function chromiumPath (): string {
  if (process.env.CHROMIUM_PATH !== undefined && process.env.CHROMIUM_PATH !== '') return process.env.CHROMIUM_PATH
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim()
  } catch {
    throw new Error('chromium is not installed: apt-get update && apt-get install -y chromium')
  }
}

export async function launch (): Promise<Browser> {
  return await chromium.launch({ executablePath: chromiumPath(), args: ARGS, headless: true })
}

export interface ChatServer {
  app: FastifyInstance
  url: string
}

/** The example chat app on 127.0.0.1, port 0, without request logs (`http2`: HTTP/2 over TLS, self-signed). */
export async function startChat (options: ChatAppOptions = {}): Promise<ChatServer> {
  const app = await buildChatApp({ ...options, fastify: { logger: false, ...options.fastify } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, url: `${options.http2 === true ? 'https' : 'http'}://127.0.0.1:${port}` }
}

/** A browser context (its own storage and connections, like a browser profile) that accepts the self-signed certificate. */
export async function newContext (browser: Browser, viewport = { width: 1100, height: 720 }): Promise<BrowserContext> {
  return await browser.newContext({ viewport, deviceScaleFactor: 1, ignoreHTTPSErrors: true })
}

/** Collects page errors and console errors of `page`. */
export function watch (page: Page): string[] {
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(`console: ${msg.text()}`) })
  return errors
}

export interface ChatPage {
  context: BrowserContext
  page: Page
  /** Page errors and console errors seen so far. */
  errors: string[]
}

/** A new browser context (its own network and storage) with the chat open, entered as `name`. */
export async function enter (browser: Browser, url: string, name: string, viewport = { width: 1100, height: 720 }): Promise<ChatPage> {
  const context = await newContext(browser, viewport)
  const page = await context.newPage()
  const errors = watch(page)
  await page.goto(url)
  await page.getByLabel('Your name').fill(name)
  await page.getByRole('button', { name: 'Enter the chat' }).click()
  await page.locator('#status[data-state="live"]').waitFor()
  return { context, page, errors }
}

/** Types and sends a message in the open conversation. */
export async function say (page: Page, text: string): Promise<void> {
  await page.locator('#text').fill(text)
  await page.getByRole('button', { name: 'Send', exact: true }).click()
  // The page empties the field once the server accepted the message.
  await page.waitForFunction(() => (document.getElementById('text') as HTMLTextAreaElement).value === '')
}

/** Texts of the messages shown in the open conversation. */
export async function texts (page: Page): Promise<string[]> {
  return await page.locator('#log .msg .text').allTextContents()
}
