/* util/error.c — names and texts for the SC_E* codes of secirc/error.h.
 * Pure table lookups; never allocates, never fails. */
#include "secirc/error.h"

#include <errno.h>

const char *sc_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define SC_ERR_TEXT(name, code, text) \
    case code:                        \
        return text;
        SC_ERRNO_MAP(SC_ERR_TEXT)
#undef SC_ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *sc_err_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define SC_ERR_NAME(name, code, text) \
    case code:                        \
        return #name;
        SC_ERRNO_MAP(SC_ERR_NAME)
#undef SC_ERR_NAME
    default:
        return "EUNKNOWN";
    }
}

int sc_translate_sys_error(int e)
{
    switch (e) {
    case 0:
        return 0;
    case EINVAL:
        return SC_EINVAL;
    case ENOMEM:
    case ENOBUFS:
        return SC_ENOMEM;
    case EIO:
        return SC_EIO;
    case ENOENT:
        return SC_ENOENT;
    case EEXIST:
        return SC_EEXIST;
    case ETIMEDOUT:
        return SC_ETIMEDOUT;
    case EAGAIN:
        return SC_EAGAIN;
    case ECONNREFUSED:
        return SC_ECONNREFUSED;
    case EHOSTUNREACH:
        return SC_EHOSTUNREACH;
    case ENETUNREACH:
        return SC_ENETUNREACH;
    case ECONNRESET:
    case ECONNABORTED:
        return SC_ECONNRESET;
    case EADDRINUSE:
        return SC_EADDRINUSE;
    case EMFILE:
    case ENFILE:
        return SC_EMFILE;
    case EACCES:
    case EPERM:
        return SC_EACCES;
    case EPIPE:
        return SC_EPIPE;
    case EADDRNOTAVAIL:
        return SC_EADDRNOTAVAIL;
    case ENOSPC:
    case EDQUOT:
        return SC_ENOSPC;
    default:
        return SC_ESYS;
    }
}
