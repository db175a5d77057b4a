/**
 * Every error code of PROTOCOL.md, made once with @fastify/error. Fastify's error handler sends
 * them in its usual shape `{ statusCode, code, error, message }`.
 */
import createError from '@fastify/error'

export const UnauthorizedError = createError('LONGPOLL_UNAUTHORIZED', 'Registration refused', 401)
export const TooManyRoomsError = createError('LONGPOLL_TOO_MANY_ROOMS', 'A session may be in at most %s rooms', 403)
export const ProfileTooLargeError = createError('LONGPOLL_PROFILE_TOO_LARGE', 'The profile exceeds %s bytes of JSON', 413)
export const SessionsFullError = createError('LONGPOLL_SESSIONS_FULL', 'The server has reached its session limit; try again later', 503)
export const BadCursorError = createError('LONGPOLL_BAD_CURSOR', 'The cursor is malformed or ahead of anything issued to this session', 400)
export const UnknownSessionError = createError('LONGPOLL_UNKNOWN_SESSION', 'Missing, wrong or expired token: register again', 401)
export const PollSupersededError = createError('LONGPOLL_POLL_SUPERSEDED', 'A newer poll of this session took over', 409)
export const ShuttingDownError = createError('LONGPOLL_SHUTTING_DOWN', 'The server is shutting down; poll again shortly', 503)
export const BadMessageError = createError('LONGPOLL_BAD_MESSAGE', '%s', 400)
export const NotAMemberError = createError('LONGPOLL_NOT_A_MEMBER', 'The session is not a member of room %s', 403)
export const NoSuchSessionError = createError('LONGPOLL_NO_SUCH_SESSION', 'No session with this id', 404)
export const MessageTooLargeError = createError('LONGPOLL_MESSAGE_TOO_LARGE', 'The message data exceeds %s bytes of JSON', 413)
export const RateLimitedError = createError('LONGPOLL_RATE_LIMITED', 'Too many messages; retry in %s s', 429)
export const StoreUnavailableError = createError('LONGPOLL_STORE_UNAVAILABLE', 'The message store cannot be reached; try again shortly', 503)
/** Thrown at register time for a wrong option. */
export const InvalidOptionError = createError('LONGPOLL_INVALID_OPTION', 'Invalid option %s', 500, TypeError)
