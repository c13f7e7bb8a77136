/* secirc/error.h — the one error convention of libsecirc.
 *
 * Every function that can fail returns 0 on success or a negative SC_E* code
 * from the table below; sc_strerror() names it. A function that returns an
 * error never also fires its callback. */
#ifndef SECIRC_ERROR_H
#define SECIRC_ERROR_H

#define SC_ERRNO_MAP(XX)                                                   \
    XX(EINVAL, -1, "invalid argument")                                     \
    XX(ENOMEM, -2, "out of memory")                                        \
    XX(EIO, -3, "input/output error")                                      \
    XX(EPERM, -4, "unsafe file permissions")                               \
    XX(EFORMAT, -5, "malformed input")                                     \
    XX(EVERSION, -6, "unsupported version")                                \
    XX(ETRUNC, -7, "truncated input")                                      \
    XX(ECRYPTO, -8, "cryptographic failure")                               \
    XX(EAUTH, -9, "authentication failed")                                 \
    XX(ESTATE, -10, "operation not allowed in this state")                 \
    XX(ETOOBIG, -11, "size over the limit")                                \
    XX(EEXPIRED, -12, "expired")                                           \
    XX(ENOENT, -13, "no such file or entry")                               \
    XX(EEXIST, -14, "already exists")                                      \
    XX(ETIMEDOUT, -15, "timed out")                                        \
    XX(ECLOSED, -16, "closed")                                             \
    XX(EAGAIN, -17, "queue full, try again later")                         \
    XX(ENOSPACE, -18, "output buffer too small")                           \
    XX(ECONNECT, -19, "connection failed")                                 \
    XX(ERESOLVE, -20, "host name resolution failed")                       \
    XX(ELIMIT, -21, "resource limit reached")                              \
    XX(ECONNREFUSED, -22, "connection refused")                            \
    XX(EHOSTUNREACH, -23, "host unreachable")                              \
    XX(ENETUNREACH, -24, "network unreachable")                            \
    XX(ECONNRESET, -25, "connection reset by peer")                        \
    XX(EADDRINUSE, -26, "address already in use")                          \
    XX(EMFILE, -27, "too many open files")                                 \
    XX(EACCES, -28, "permission denied")                                   \
    XX(EPIPE, -29, "broken pipe")                                          \
    XX(EADDRNOTAVAIL, -30, "address not available")                        \
    XX(ESYS, -31, "system error")                                          \
    XX(ENOSPC, -32, "no space left on device")                             \
    XX(EPROXY, -33, "proxy failed")                                 \
    XX(EPROXYAUTH, -34, "proxy refused the credentials")            \
    XX(EONION, -35, "onion service unreachable") \
    XX(ETLS, -36, "TLS handshake failed")                                  \
    XX(ETLSVERSION, -37, "no common TLS protocol version")                 \
    XX(ETLSCERT, -38, "TLS certificate not accepted")                      \
    XX(ETLSKEY, -39, "TLS private key does not match the certificate")

enum sc_error {
    SC_OK = 0,
#define SC_ERR_ENUM(name, code, text) SC_##name = (code),
    SC_ERRNO_MAP(SC_ERR_ENUM)
#undef SC_ERR_ENUM
};

/* Human-readable text for an SC_E* code (or "success" for 0). Never NULL. */
const char *sc_strerror(int err);
/* Symbolic name, e.g. "EPERM". Never NULL. */
const char *sc_err_name(int err);
/* A system errno value as an SC_E* code (libuv's uv_translate_sys_error):
 * the cause travels in the return value, never through a global. Values
 * without an SC_E* counterpart become SC_ESYS. 0 stays 0. */
int sc_translate_sys_error(int sys_errno);

#if defined(__GNUC__)
#define SC_MUST_CHECK __attribute__((warn_unused_result))
#else
#define SC_MUST_CHECK
#endif

#endif
