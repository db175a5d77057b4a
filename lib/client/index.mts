/**
 * The ES module entry of `fastify-long-poll-chat/client` in Node (the `import` condition): a
 * wrapper around the CommonJS build that re-exports every named export and makes the default
 * export `createChatClient` itself (Node's `import x from` does not unwrap `exports.default`).
 * Browsers and bundlers get dist/browser/client.js instead (the `browser` condition).
 */
import cjs from './index.js'

export * from './index.js'
export default cjs.default
