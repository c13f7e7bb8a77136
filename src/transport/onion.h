/* transport/onion.h — recognising and validating Tor .onion host names
 * (tor spec rend-spec-v3, "Encoding onion addresses"). Pure string and hash
 * checks: no I/O, no DNS; it must never let an onion name go anywhere but
 * through Tor. */
#ifndef SC_TRANSPORT_ONION_H
#define SC_TRANSPORT_ONION_H

#include <stdbool.h>

#include "secirc/error.h"

/* The 56 base32 characters of a v3 address, without ".onion". */
#define SC_ONION_V3_LABEL_LEN 56u
#define SC_ONION_V3_PUBKEY_BYTES 32u
#define SC_ONION_V3_CHECKSUM_LABEL ".onion checksum"

/* True when `host` ends in ".onion" (any case) after at least one other
 * character, or in ".onion." (a trailing dot: still an onion name, so it is
 * never dialled outside Tor; sc_onion_v3_check refuses that form). False
 * for NULL, "onion", ".onion". Says nothing about validity. */
bool sc_host_is_onion(const char *host);

/* 0 when `host` is a valid v3 onion address: optional subdomain labels
 * (1..63 of [A-Za-z0-9-] each, e.g. "www."), then 56 base32 characters
 * (a-z 2-7, upper case accepted too), then ".onion"; at most 255 bytes.
 * The label decodes to PUBKEY(32) || CHECKSUM(2) || VERSION(1) with
 * VERSION 3, CHECKSUM = SHA3-256(".onion checksum" || PUBKEY || VERSION)[0..1]
 * and PUBKEY a valid Ed25519 point without a torsion component (as Tor
 * requires, so no two addresses name the same service). Returns
 *   SC_EINVAL   host is NULL;
 *   SC_EFORMAT  wrong length, suffix, label or character, bad checksum;
 *   SC_EVERSION VERSION is not 3 (a v2 address is SC_EFORMAT: too short);
 *   SC_ECRYPTO  PUBKEY is not a valid point, or SHA3 is unavailable. */
int sc_onion_v3_check(const char *host) SC_MUST_CHECK;

#endif
