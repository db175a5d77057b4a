/**
 * Every error code of PROTOCOL.md, made once with @fastify/error from the code list of wire.ts
 * (code and status) and the messages below. Fastify's error handler sends them in its usual shape
 * `{ statusCode, code, error, message }`.
 */
import createError from '@fastify/error'
import { ERROR_CODES, type ErrorCode } from './wire.js'

/** The message of each code (`%s` is filled from the constructor's argument): one per code of wire.ts. */
const MESSAGES = {
  LONGPOLL_UNAUTHORIZED: 'Registration refused',
  LONGPOLL_TOO_MANY_ROOMS: 'A session may be in at most %s rooms',
  LONGPOLL_PROFILE_TOO_LARGE: 'The profile exceeds %s bytes of JSON',
  LONGPOLL_SESSIONS_FULL: 'The server has reached its session limit; try again later',
  LONGPOLL_BAD_CURSOR: 'The cursor is malformed or ahead of anything issued to this session',
  LONGPOLL_UNKNOWN_SESSION: 'Missing, wrong or expired token: register again',
  LONGPOLL_POLL_SUPERSEDED: 'A newer poll of this session took over',
  LONGPOLL_SHUTTING_DOWN: 'The server is shutting down; poll again shortly',
  LONGPOLL_BAD_MESSAGE: '%s',
  LONGPOLL_NOT_A_MEMBER: 'The session is not a member of room %s',
  LONGPOLL_NO_SUCH_SESSION: 'No session with this id',
  LONGPOLL_MESSAGE_TOO_LARGE: 'The message data exceeds %s bytes of JSON',
  LONGPOLL_RATE_LIMITED: 'Too many messages; retry in %s s',
  LONGPOLL_STORE_UNAVAILABLE: 'The message store cannot be reached; try again shortly'
} satisfies Record<ErrorCode, string>

function define<C extends ErrorCode> (code: C) {
  return createError(code, MESSAGES[code], ERROR_CODES[code])
}

export const UnauthorizedError = define('LONGPOLL_UNAUTHORIZED')
export const TooManyRoomsError = define('LONGPOLL_TOO_MANY_ROOMS')
export const ProfileTooLargeError = define('LONGPOLL_PROFILE_TOO_LARGE')
export const SessionsFullError = define('LONGPOLL_SESSIONS_FULL')
export const BadCursorError = define('LONGPOLL_BAD_CURSOR')
export const UnknownSessionError = define('LONGPOLL_UNKNOWN_SESSION')
export const PollSupersededError = define('LONGPOLL_POLL_SUPERSEDED')
export const ShuttingDownError = define('LONGPOLL_SHUTTING_DOWN')
export const BadMessageError = define('LONGPOLL_BAD_MESSAGE')
export const NotAMemberError = define('LONGPOLL_NOT_A_MEMBER')
export const NoSuchSessionError = define('LONGPOLL_NO_SUCH_SESSION')
export const MessageTooLargeError = define('LONGPOLL_MESSAGE_TOO_LARGE')
export const RateLimitedError = define('LONGPOLL_RATE_LIMITED')
export const StoreUnavailableError = define('LONGPOLL_STORE_UNAVAILABLE')
/** Thrown at register time for a wrong option (not a wire error: no request is answered with it). */
export const InvalidOptionError = createError('LONGPOLL_INVALID_OPTION', 'Invalid option %s', 500, TypeError)
