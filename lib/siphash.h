/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash for hash
 * tables whose keys come from clients, so that nobody who does not know the
 * key can choose keys that fall into one bucket. For processes that do not
 * link a crypto library (the store); tests/unit/test_siphash.c checks it
 * against BoringSSL's SIPHASH_24.
 */
#ifndef CERTWARD_SIPHASH_H
#define CERTWARD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t siphash24(const uint64_t key[2], const void *data, size_t len);

#endif
