/*
 * Filesystem discovery (docs/agent.md, "Discovery"): the certificates
 * found in the directories an agent is told to scan, as the report it
 * posts to POST /api/v1/agents/{id}/discoveries.
 *
 * A scan walks each directory depth-first, at most max_depth levels below
 * it, never into a symbolic link to a directory, and reads regular files
 * only (a link to a regular file is read: distributions build
 * /etc/ssl/certs from them). A file with PEM blocks gives each of its
 * CERTIFICATE blocks (a chain file gives every certificate of the chain);
 * key blocks are skipped without being decoded. A file without PEM blocks
 * gives one certificate when it is exactly one DER certificate. Anything
 * else is skipped silently: most files in /etc are not certificates.
 *
 * Each certificate is a JSON object: fingerprint_sha256 (lower-case hex of
 * the DER's SHA-256), common_name, sans (DNS, IP, e-mail and URI names as
 * text), serial_number (lower-case hex), issuer_dn and subject_dn (RFC 2253
 * text), not_before and not_after (RFC 3339, UTC), key_algorithm (RSA,
 * ECDSA, Ed25519 or Other), key_size (bits), is_ca, pem_data (that
 * certificate alone, PEM), source_path (absolute) and source_format (PEM or
 * DER). The same certificate at the same path is reported once per scan.
 *
 * What does not fit the report's bounds (the api's, workers/api/discovery.c)
 * is left out with an entry in errors rather than sent to be refused: a
 * path that is not UTF-8 text or longer than 2048 bytes, a certificate
 * whose fields are too large. errors holds at most 1000 entries of at most
 * 1024 bytes each ("<path>: <why>"); unprintable bytes of a path show as
 * \xNN.
 */
#ifndef CERTWARD_AGENT_DISCOVERY_H
#define CERTWARD_AGENT_DISCOVERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct discovery_limits {
	size_t max_files;     /* files read (opened) per scan; then the scan stops */
	size_t max_file_size; /* bytes; a larger file is skipped with an error entry */
	size_t max_certs;     /* certificates per scan (the api takes at most 5000) */
	unsigned max_depth;   /* directory levels below each directory scanned (0: its files only) */
};

/* A DiscoveryReport JSON object {directories, certificates, errors, scan_duration_ms} (without agent_id) for dirs, or NULL with why. */
json_t *discovery_scan(const char *const *dirs, size_t ndirs, const struct discovery_limits *lim, char *why, size_t whylen);

/*
 * The certificates of one file's contents buf[0..len), read from path
 * (absolute, reportable text), appended to the array certificates unless
 * one with the same fingerprint and path is there already; at most
 * max_certs in the array. Malformed certificate blocks and certificates too
 * large to report add an entry to the array errors. Returns the number of
 * certificates added, or -1 when memory ran out.
 */
int discovery_parse_file(const uint8_t *buf, size_t len, const char *path, json_t *certificates, json_t *errors,
			 size_t max_certs);

#endif
