/**
 * The client lives in lib/client/ (its entry, `fastify-long-poll-chat/client`, is
 * lib/client/index.ts). This file only re-exports it, so that imports of `lib/client.js` from
 * inside the repository (the client tests) keep working; it is not part of the package's exports.
 */
export * from './client/index.js'
export { default } from './client/index.js'
