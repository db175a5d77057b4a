/**
 * The route schemas of PROTOCOL.md (validation and response serialization), put together from
 * the wire shapes of wire.ts: every body, query, param and reply, and the error reply of 4xx/5xx.
 *
 * `GET /poll` and `HEAD /poll` have no querystring schema: the poll routes check `cursor` and
 * `wait` themselves, after the token (a bad token is a 401 whatever the query), with the same
 * schema (`PollQuerySchema`).
 */
import {
  AuthHeadersSchema, ErrorReplySchema, HistoryQuerySchema, HistoryReplySchema, JoinQuerySchema,
  MembersQuerySchema, MembersReplySchema, MessageBodySchema, MessageReplySchema, NoContentSchema,
  PollReplySchema, RegisterBodySchema, RegisterReplySchema, RoomParamsSchema
} from './wire.js'

const errors = { '4xx': ErrorReplySchema, '5xx': ErrorReplySchema }
const headers = AuthHeadersSchema
const params = RoomParamsSchema

export const schemas = {
  register: { body: RegisterBodySchema, response: { 201: RegisterReplySchema, ...errors } },
  poll: { headers, response: { 200: PollReplySchema, ...errors } },
  pollHead: { headers, response: errors },
  messages: { headers, body: MessageBodySchema, response: { 202: MessageReplySchema, ...errors } },
  join: { headers, params, querystring: JoinQuerySchema, response: { 200: HistoryReplySchema, 204: NoContentSchema, ...errors } },
  leave: { headers, params, response: { 204: NoContentSchema, ...errors } },
  members: { headers, params, querystring: MembersQuerySchema, response: { 200: MembersReplySchema, ...errors } },
  history: { headers, params, querystring: HistoryQuerySchema, response: { 200: HistoryReplySchema, ...errors } },
  endSession: { headers, response: { 204: NoContentSchema, ...errors } }
}
