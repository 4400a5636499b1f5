/* ragbox status codes.
 *
 * Every fallible call in ragbox returns enum rb_status: RB_OK (0) or a
 * negative error. The table below is the one place codes are defined; add a
 * row to add a code. rb_status_str() gives the stable short name, used in
 * logs, JSON errors and CLI messages. Thread-safe (pure functions).
 */
#ifndef RAGBOX_STATUS_H
#define RAGBOX_STATUS_H

#if defined(__GNUC__)
#define RB_NODISCARD __attribute__((warn_unused_result))
#define RB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RB_NODISCARD
#define RB_PRINTF(a, b)
#endif

/* X(NAME, value, "short description") */
#define RB_STATUS_TABLE(X)                                                                         \
    X(OK, 0, "success")                                                                            \
    X(ERR_NOMEM, -1, "out of memory")                                                              \
    X(ERR_INVALID, -2, "invalid argument")                                                         \
    X(ERR_IO, -3, "input/output error")                                                            \
    X(ERR_NOT_FOUND, -4, "not found")                                                              \
    X(ERR_EXISTS, -5, "already exists")                                                            \
    X(ERR_FORMAT, -6, "malformed or unsupported input")                                            \
    X(ERR_CORRUPT, -7, "data is corrupt")                                                          \
    X(ERR_TOO_LARGE, -8, "input exceeds a limit")                                                  \
    X(ERR_UNSUPPORTED, -9, "not supported")                                                        \
    X(ERR_DB, -10, "database error")                                                               \
    X(ERR_VECTOR, -11, "vector index error")                                                       \
    X(ERR_CONFIG, -12, "configuration error")                                                      \
    X(ERR_DIMENSION, -13, "vector dimension mismatch")                                             \
    X(ERR_DENIED, -14, "permission denied")                                                        \
    X(ERR_AUTH, -15, "authentication failed")                                                      \
    X(ERR_TIMEOUT, -16, "timed out")                                                               \
    X(ERR_BUSY, -17, "resource busy")                                                              \
    X(ERR_CANCELLED, -18, "cancelled")                                                             \
    X(ERR_NETWORK, -19, "network error")                                                           \
    X(ERR_MODEL, -20, "model error")                                                               \
    X(ERR_CONTEXT_FULL, -21, "context window full")                                                \
    X(ERR_ENCODING, -22, "text encoding error")                                                    \
    X(ERR_PARSE, -23, "document could not be parsed")                                              \
    X(ERR_VERIFY, -24, "verification failed")                                                      \
    X(ERR_CRYPTO, -25, "cryptographic error")                                                      \
    X(ERR_CHILD, -26, "worker process failed")                                                     \
    X(ERR_LIMIT, -27, "rate or resource limit reached")                                            \
    X(ERR_INTERNAL, -28, "internal error")

enum rb_status {
#define RB__STATUS_ENUM(name, value, text) RB_##name = value,
    RB_STATUS_TABLE(RB__STATUS_ENUM)
#undef RB__STATUS_ENUM
};

/* Stable lower-case name ("err_not_found"); "unknown" for a value not in the table. */
const char *rb_status_name(enum rb_status status);
/* Human description ("not found"). Static storage. */
const char *rb_status_str(enum rb_status status);

#endif
