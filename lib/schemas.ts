/**
 * The route schemas of PROTOCOL.md (validation and response serialization), put together from
 * the wire shapes of wire.ts: every body, query, param and reply, and the error reply of 4xx/5xx.
 */
import {
  AuthHeadersSchema, ErrorReplySchema, MembersReplySchema, MessageBodySchema, MessageReplySchema,
  NoContentSchema, PollQuerySchema, PollReplySchema, RegisterBodySchema, RegisterReplySchema, RoomParamsSchema
} from './wire.js'

const errors = { '4xx': ErrorReplySchema, '5xx': ErrorReplySchema }
const headers = AuthHeadersSchema
const params = RoomParamsSchema

export const schemas = {
  register: { body: RegisterBodySchema, response: { 201: RegisterReplySchema, ...errors } },
  poll: { headers, querystring: PollQuerySchema, response: { 200: PollReplySchema, ...errors } },
  messages: { headers, body: MessageBodySchema, response: { 202: MessageReplySchema, ...errors } },
  join: { headers, params, response: { 204: NoContentSchema, ...errors } },
  leave: { headers, params, response: { 204: NoContentSchema, ...errors } },
  members: { headers, params, response: { 200: MembersReplySchema, ...errors } },
  endSession: { headers, response: { 204: NoContentSchema, ...errors } }
}
