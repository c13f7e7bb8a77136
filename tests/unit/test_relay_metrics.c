/* tests/unit/test_relay_metrics.c — the Prometheus exposition of
 * relay/metrics.h from snapshots filled by hand: every family present once
 * with HELP and TYPE even when all is zero, well-formed sample lines, label
 * and HELP escaping, floats, histogram buckets cumulative up to +Inf, and
 * each value under its own labels. Pure: no daemon, no socket. */
#include <math.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "relay/metrics.h"

/* Every family with its type: what dashboards and docs/CONFIG.md rely on. */
static const struct {
    const char *name, *type;
} families[] = {
    {"secirc_relay_info", "gauge"},
    {"secirc_uptime_seconds", "gauge"},
    {"secirc_reloads_total", "counter"},
    {"secirc_reloads_failed_total", "counter"},
    {"secirc_paths", "gauge"},
    {"secirc_connected_peers", "gauge"},
    {"secirc_min_connections", "gauge"},
    {"secirc_max_connections", "gauge"},
    {"secirc_dials_in_flight", "gauge"},
    {"secirc_reconnects_total", "counter"},
    {"secirc_evictions_total", "counter"},
    {"secirc_duplicates_closed_total", "counter"},
    {"secirc_rekeys_total", "counter"},
    {"secirc_key_rotations_total", "counter"},
    {"secirc_handshakes_ok_total", "counter"},
    {"secirc_handshakes_failed_total", "counter"},
    {"secirc_messages_sent_total", "counter"},
    {"secirc_messages_received_total", "counter"},
    {"secirc_sent_bytes_total", "counter"},
    {"secirc_received_bytes_total", "counter"},
    {"secirc_messages_undelivered_total", "counter"},
    {"secirc_messages_forwarded_total", "counter"},
    {"secirc_messages_deduplicated_total", "counter"},
    {"secirc_messages_delivered_total", "counter"},
    {"secirc_messages_invalid_total", "counter"},
    {"secirc_heartbeat_rtt_seconds", "histogram"},
    {"secirc_listener_accepted_total", "counter"},
    {"secirc_listener_refused_total", "counter"},
    {"secirc_listener_evicted_total", "counter"},
    {"secirc_listener_authenticated_total", "counter"},
    {"secirc_listener_handshakes_in_progress", "gauge"},
    {"secirc_listener_links_open", "gauge"},
    {"secirc_listener_tarpit_connections", "gauge"},
    {"secirc_listener_closed_total", "counter"},
};
#define N_FAMILIES (sizeof families / sizeof families[0])

static const double bounds[SC_METRICS_RTT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    2.5};

/* The exposition as a NUL-terminated string (the caller frees it). */
static char *format(const struct sc_metrics_snapshot *s)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_int_equal(sc_metrics_format(s, b), 0);
    size_t n = evbuffer_get_length(b);
    char *text = malloc(n + 1);
    assert_non_null(text);
    assert_int_equal(evbuffer_remove(b, text, n), (int)n);
    text[n] = '\0';
    evbuffer_free(b);
    return text;
}

static char *label_value(const char *v)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_int_equal(sc_metrics_append_label_value(b, v), 0);
    assert_int_equal(evbuffer_add(b, "", 1), 0);
    char *out = strdup((const char *)evbuffer_pullup(b, -1));
    evbuffer_free(b);
    return out;
}

static void expect_double(double v, const char *want)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_int_equal(sc_metrics_append_double(b, v), 0);
    assert_int_equal(evbuffer_add(b, "", 1), 0);
    assert_string_equal((const char *)evbuffer_pullup(b, -1), want);
    evbuffer_free(b);
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The value of the sample line that starts with `series` followed by a
 * space; fails when there is no such line or more than one. */
static double value_of(const char *text, const char *series)
{
    char key[256];
    snprintf(key, sizeof key, "\n%s ", series);
    const char *p = strstr(text, key);
    if (p == NULL) {
        fail_msg("no sample %s", series);
        return -1;
    }
    const char *value = p + strlen(key);
    if (strstr(value, key) != NULL)
        fail_msg("sample %s twice", series);
    return strtod(value, NULL);
}

static void zero_snapshot(struct sc_metrics_snapshot *s)
{
    memset(s, 0, sizeof *s);
    memset(s->relay_id_hex, 'a', sizeof s->relay_id_hex - 1);
    memcpy(s->rtt_bounds_s, bounds, sizeof bounds);
}

/* Each family once, HELP then TYPE, with samples right after; nothing
 * else; every line either a comment of those two kinds or a sample
 * `name{labels} value` of the family declared last. */
static void test_every_family_when_zero(void **state)
{
    (void)state;
    struct sc_metrics_snapshot s;
    zero_snapshot(&s);
    char *text = format(&s);

    for (size_t i = 0; i < N_FAMILIES; i++) {
        char help[128], type[128];
        snprintf(help, sizeof help, "# HELP %s ", families[i].name);
        snprintf(type, sizeof type, "# TYPE %s %s\n", families[i].name, families[i].type);
        if (count_of(text, help) != 1 || count_of(text, type) != 1)
            fail_msg("family %s (%s): HELP %zu, TYPE %zu times", families[i].name,
                     families[i].type, count_of(text, help), count_of(text, type));
    }
    assert_int_equal(count_of(text, "# HELP "), N_FAMILIES);
    assert_int_equal(count_of(text, "# TYPE "), N_FAMILIES);

    regex_t sample_rx;
    assert_int_equal(regcomp(&sample_rx,
                             "^(secirc_[a-z_]+)(\\{[a-z_]+=\"[^\"\\\\]*\"(,[a-z_]+=\"[^\"\\\\]*\")*\\})? "
                             "([0-9]+(\\.[0-9]+)?|[0-9.]+e-?[0-9]+|\\+Inf|NaN)$",
                             REG_EXTENDED),
                     0);
    char current[128] = "";
    const char *type = "";
    size_t samples = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_true(sscanf(line + 7, "%127s", current) == 1);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            size_t n = strlen(current);
            assert_memory_equal(line + 7, current, n);
            type = line + 7 + n + 1;
            continue;
        }
        regmatch_t m[2];
        if (regexec(&sample_rx, line, 2, m, 0) != 0)
            fail_msg("not a sample line: '%s'", line);
        char name[128];
        size_t n = (size_t)(m[1].rm_eo - m[1].rm_so);
        assert_true(n < sizeof name);
        memcpy(name, line, n);
        name[n] = '\0';
        /* A sample belongs to the family declared just before it. */
        if (strcmp(type, "histogram") == 0) {
            size_t fl = strlen(current);
            assert_memory_equal(name, current, fl);
            assert_true(strcmp(name + fl, "_bucket") == 0 || strcmp(name + fl, "_sum") == 0 ||
                        strcmp(name + fl, "_count") == 0);
        } else {
            assert_string_equal(name, current);
            if (strcmp(type, "counter") == 0)
                assert_string_equal(name + n - 6, "_total");
            else
                assert_true(n < 6 || strcmp(name + n - 6, "_total") != 0);
            /* All zero but the info gauge. */
            assert_true(strcmp(line + n, " 0") == 0 || strstr(line + n, "} 0") != NULL ||
                        strcmp(name, "secirc_relay_info") == 0);
        }
        samples++;
    }
    regfree(&sample_rx);
    /* 18 paths, 26 + 26 reasons, 12 + 1 buckets + sum + count, the rest one each. */
    assert_int_equal(samples, 18 + 2 * (SC_REASON_COUNT - 1) + (SC_METRICS_RTT_BUCKETS + 3) +
                                  (N_FAMILIES - 4));
    free(text);
}

static void test_values_under_their_labels(void **state)
{
    (void)state;
    struct sc_metrics_snapshot s;
    zero_snapshot(&s);
    s.paths[SC_PATH_AUTHENTICATED][SC_PATH_TCP] = 3;
    s.paths[SC_PATH_FAILED][SC_PATH_WEBSOCKET] = 2;
    s.paths[SC_PATH_RECONNECTING][SC_PATH_TOR] = 1;
    s.status.connected_peers = 3;
    s.min_connections = 2;
    s.max_connections = 10;
    s.status.total_messages_sent = 12345678901234ull;
    s.status.total_bytes_received = UINT64_MAX;
    s.daemon.handshakes_failed[SC_REASON_IDENTITY_MISMATCH] = 4;
    s.daemon.handshakes_ok = 9;
    s.daemon.messages_forwarded = 5;
    s.daemon.reloads = 1;
    s.listener.closed[SC_REASON_PROBE_DROPPED] = 7;
    s.listener.closed[SC_REASON_RATE_LIMITED] = 8;
    s.listener.refused = 6;
    s.listener.tarpit = 11;
    s.reconnects = 13;
    s.uptime_s = 86400;
    char *text = format(&s);

    assert_true(value_of(text, "secirc_paths{state=\"authenticated\",transport=\"tcp\"}") == 3);
    assert_true(value_of(text, "secirc_paths{state=\"failed\",transport=\"websocket\"}") == 2);
    assert_true(value_of(text, "secirc_paths{state=\"reconnecting\",transport=\"tor\"}") == 1);
    assert_true(value_of(text, "secirc_paths{state=\"authenticated\",transport=\"tor\"}") == 0);
    assert_true(value_of(text, "secirc_connected_peers") == 3);
    assert_true(value_of(text, "secirc_min_connections") == 2);
    assert_true(value_of(text, "secirc_max_connections") == 10);
    assert_non_null(strstr(text, "\nsecirc_messages_sent_total 12345678901234\n"));
    assert_non_null(strstr(text, "\nsecirc_received_bytes_total 18446744073709551615\n"));
    assert_true(value_of(text, "secirc_handshakes_failed_total{reason=\"identity_mismatch\"}") == 4);
    assert_true(value_of(text, "secirc_handshakes_failed_total{reason=\"timeout\"}") == 0);
    assert_null(strstr(text, "reason=\"none\""));
    assert_true(value_of(text, "secirc_handshakes_ok_total") == 9);
    assert_true(value_of(text, "secirc_messages_forwarded_total") == 5);
    assert_true(value_of(text, "secirc_reloads_total") == 1);
    assert_true(value_of(text, "secirc_listener_closed_total{reason=\"probe_dropped\"}") == 7);
    assert_true(value_of(text, "secirc_listener_closed_total{reason=\"rate_limited\"}") == 8);
    assert_true(value_of(text, "secirc_listener_closed_total{reason=\"probe_replayed\"}") == 0);
    assert_true(value_of(text, "secirc_listener_closed_total{reason=\"handshake_limit\"}") == 0);
    assert_true(value_of(text, "secirc_listener_closed_total{reason=\"busy\"}") == 0);
    assert_true(value_of(text, "secirc_listener_refused_total") == 6);
    assert_true(value_of(text, "secirc_listener_tarpit_connections") == 11);
    assert_true(value_of(text, "secirc_reconnects_total") == 13);
    assert_true(value_of(text, "secirc_uptime_seconds") == 86400);
    char info[160];
    snprintf(info, sizeof info, "secirc_relay_info{relay_id=\"%s\"}", s.relay_id_hex);
    assert_true(value_of(text, info) == 1);
    free(text);
}

static void test_histogram(void **state)
{
    (void)state;
    struct sc_metrics_snapshot s;
    zero_snapshot(&s);
    /* Samples of 0.3 ms, 0.7 ms, 4 ms, 40 ms and 3 s, counted cumulatively
     * as the daemon does. */
    static const double rtt[] = {0.0003, 0.0007, 0.004, 0.04, 3.0};
    for (size_t k = 0; k < sizeof rtt / sizeof rtt[0]; k++) {
        for (size_t i = 0; i < SC_METRICS_RTT_BUCKETS; i++)
            if (rtt[k] <= bounds[i])
                s.daemon.rtt_le[i]++;
        s.daemon.rtt_sum_s += rtt[k];
        s.daemon.rtt_count++;
    }
    char *text = format(&s);
    static const char *want =
        "# TYPE secirc_heartbeat_rtt_seconds histogram\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.0005\"} 1\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.001\"} 2\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.0025\"} 2\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.005\"} 3\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.01\"} 3\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.025\"} 3\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.05\"} 4\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.1\"} 4\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.25\"} 4\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"0.5\"} 4\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"1\"} 4\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"2.5\"} 4\n"
        "secirc_heartbeat_rtt_seconds_bucket{le=\"+Inf\"} 5\n"
        "secirc_heartbeat_rtt_seconds_sum 3.045\n"
        "secirc_heartbeat_rtt_seconds_count 5\n";
    if (strstr(text, want) == NULL)
        fail_msg("histogram not found as expected in:\n%s", strstr(text, "# TYPE secirc_heartbeat"));
    free(text);

    /* A last bound of +Inf is not written twice. */
    s.rtt_bounds_s[SC_METRICS_RTT_BUCKETS - 1] = INFINITY;
    text = format(&s);
    assert_int_equal(count_of(text, "le=\"+Inf\""), 1);
    assert_int_equal(count_of(text, "secirc_heartbeat_rtt_seconds_bucket{"), SC_METRICS_RTT_BUCKETS);
    free(text);
}

static void test_label_escaping(void **state)
{
    (void)state;
    char *v = label_value("a\"b\\c\nd");
    assert_string_equal(v, "a\\\"b\\\\c\\nd");
    free(v);
    v = label_value("");
    assert_string_equal(v, "");
    free(v);
    v = label_value("\\\\\n\"");
    assert_string_equal(v, "\\\\\\\\\\n\\\"");
    free(v);
    v = label_value("plain_value-1.2 ü");
    assert_string_equal(v, "plain_value-1.2 ü");
    free(v);
}

static void test_doubles(void **state)
{
    (void)state;
    expect_double(0, "0");
    expect_double(0.1, "0.1");
    expect_double(0.0005, "0.0005");
    expect_double(2.5, "2.5");
    expect_double(1e-05, "1e-05");
    expect_double(123456789012.0, "123456789012");
    expect_double(1.0 / 3.0, "0.3333333333333333");
    expect_double(INFINITY, "+Inf");
    expect_double(-INFINITY, "-Inf");
    expect_double(NAN, "NaN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_family_when_zero),
        cmocka_unit_test(test_values_under_their_labels),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_doubles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
