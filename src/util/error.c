/* util/error.c — names and texts for the SC_E* codes of secirc/error.h.
 * Pure table lookups; never allocates, never fails. */
#include "secirc/error.h"

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
