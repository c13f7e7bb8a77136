/* link/reason.c — names and texts of close/reject reasons (secirc/link.h),
 * and the reasons transport layer errors count under. Pure table lookups. */
#include <string.h>

#include "link/link_stream.h"
#include "secirc/link.h"

static const char *const names[] = {
#define SC_REASON_NAME(name, code, str, text) [code] = str,
    SC_REASON_MAP(SC_REASON_NAME)
#undef SC_REASON_NAME
};

static const char *const texts[] = {
#define SC_REASON_TEXT(name, code, str, text) [code] = text,
    SC_REASON_MAP(SC_REASON_TEXT)
#undef SC_REASON_TEXT
};

const char *sc_reason_name(unsigned reason)
{
    return reason < SC_REASON_COUNT && names[reason] ? names[reason] : "unknown";
}

const char *sc_reason_text(unsigned reason)
{
    return reason < SC_REASON_COUNT && texts[reason] ? texts[reason] : "unknown reason";
}

int sc_reason_parse(const char *name)
{
    for (unsigned i = 0; i < SC_REASON_COUNT; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

enum sc_reason sc_link_layer_reason(int err, enum sc_reason fallback)
{
    switch (err) {
    case SC_ETLS:
        return SC_REASON_TLS_FAILED;
    case SC_ETLSVERSION:
        return SC_REASON_TLS_VERSION;
    case SC_ETLSCERT:
        return SC_REASON_TLS_CERT;
    default:
        return fallback;
    }
}
