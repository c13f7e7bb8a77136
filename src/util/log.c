/* util/log.c — leveled, one-line-per-event logging to stderr (text or JSON)
 * or to an embedder's handler. Formats into a bounded stack buffer; never
 * allocates, never logs more than SC_LOG_LINE_MAX bytes per line. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define SC_LOG_LINE_MAX 1024

static enum sc_log_level g_level = SC_LOG_INFO;
static bool g_json;
static sc_log_handler g_handler;
static void *g_handler_arg;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void sc_log_set_level(enum sc_log_level level) { g_level = level; }
enum sc_log_level sc_log_get_level(void) { return g_level; }
void sc_log_set_json(bool json) { g_json = json; }

void sc_log_set_handler(sc_log_handler handler, void *arg)
{
    g_handler = handler;
    g_handler_arg = arg;
}

int sc_log_level_parse(const char *name)
{
    for (int i = 0; i <= SC_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *sc_log_level_name(enum sc_log_level level)
{
    return (unsigned)level <= SC_LOG_OFF ? level_names[level] : "?";
}

/* Appends `s` to out as JSON string content (no quotes). */
static size_t json_escape(char *out, size_t cap, size_t pos, const char *s, size_t n)
{
    for (size_t i = 0; i < n && pos + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
        } else {
            out[pos++] = (char)c;
        }
    }
    return pos;
}

/* Turns `k=v k2="v 2"` into `"k":"v","k2":"v 2"`. */
static size_t fields_to_json(char *out, size_t cap, size_t pos, const char *fields)
{
    const char *p = fields;
    while (*p && pos + 16 < cap) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *eq = strchr(p, '=');
        const char *sp = strchr(p, ' ');
        if (!eq || (sp && sp < eq)) { /* a bare word: keep it under "text" */
            size_t n = sp ? (size_t)(sp - p) : strlen(p);
            pos += (size_t)snprintf(out + pos, cap - pos, ",\"text\":\"");
            pos = json_escape(out, cap, pos, p, n);
            if (pos + 1 < cap)
                out[pos++] = '"';
            p += n;
            continue;
        }
        pos += (size_t)snprintf(out + pos, cap - pos, ",\"");
        pos = json_escape(out, cap, pos, p, (size_t)(eq - p));
        pos += (size_t)snprintf(out + pos, cap - pos, "\":\"");
        const char *v = eq + 1, *end;
        if (*v == '"') {
            v++;
            end = strchr(v, '"');
            if (!end)
                end = v + strlen(v);
            p = *end ? end + 1 : end;
        } else {
            end = strchr(v, ' ');
            if (!end)
                end = v + strlen(v);
            p = end;
        }
        pos = json_escape(out, cap, pos, v, (size_t)(end - v));
        if (pos + 1 < cap)
            out[pos++] = '"';
    }
    return pos;
}

void sc_log(enum sc_log_level level, const char *event, const char *fmt, ...)
{
    if (level < g_level || level >= SC_LOG_OFF)
        return;
    char fields[SC_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(fields, sizeof fields, fmt, ap);
    va_end(ap);
    if (n < 0)
        fields[0] = '\0';
    if (g_handler) {
        g_handler(level, event, fields, g_handler_arg);
        return;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t tn = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tn, sizeof ts - tn, ".%03uZ", (unsigned)(tv.tv_usec / 1000) % 1000u);
    char line[SC_LOG_LINE_MAX * 2];
    size_t pos;
    if (g_json) {
        pos = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"",
                               ts, level_names[level]);
        pos = json_escape(line, sizeof line, pos, event, strlen(event));
        line[pos++] = '"';
        pos = fields_to_json(line, sizeof line - 3, pos, fields);
        line[pos++] = '}';
    } else {
        pos = (size_t)snprintf(line, sizeof line, "%s %-5s %s %s", ts, level_names[level],
                               event, fields);
        if (pos > sizeof line - 2)
            pos = sizeof line - 2;
    }
    line[pos++] = '\n';
    fwrite(line, 1, pos, stderr);
}

long long sc_log_ratelimit_pass(struct sc_log_ratelimit *rl, uint64_t now_ms)
{
    if (rl->last_ms != 0 && now_ms - rl->last_ms < rl->interval_ms) {
        rl->suppressed++;
        return -1;
    }
    long long s = (long long)rl->suppressed;
    rl->suppressed = 0;
    rl->last_ms = now_ms ? now_ms : 1;
    return s;
}
