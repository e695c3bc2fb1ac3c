/*
 * A minimal DNS client for TXT records (RFC 1035): the scheduler asks the
 * resolvers of an ACME issuer whether a DNS-01 challenge record is visible
 * yet. The query builder and the response parser do no I/O; dns_txt_query
 * is a small blocking helper over one UDP socket. UDP only: a truncated
 * answer (TC=1) is an error, not a retry over TCP.
 */
#ifndef CERTWARD_DNS_H
#define CERTWARD_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 253     /* presentation form, without the final dot */
#define DNS_QUERY_MAX 512    /* a query for a name of DNS_NAME_MAX fits */
#define DNS_RESPONSE_MAX 4096
#define DNS_TXT_MAX 4096     /* one TXT record's strings concatenated */
#define DNS_TXT_RECORDS_MAX 32

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3

/* "a.example.com" or "a.example.com.": labels of 1..63 letters, digits,
 * '-' or '_', the whole at most DNS_NAME_MAX without the final dot. */
bool dns_name_valid(const char *name);

/* Writes a query for TXT/IN of name with id and RD=1 into out (at least
 * DNS_QUERY_MAX bytes). Returns its length, or -1 for a name that is not
 * dns_name_valid. */
int dns_build_txt_query(uint8_t *out, size_t outlen, uint16_t id, const char *name);

struct dns_txt_result {
	int rcode;                  /* DNS_RCODE_* as answered */
	size_t count;               /* TXT records for the name asked */
	char *records[DNS_TXT_RECORDS_MAX]; /* each NUL-terminated, its strings concatenated */
	size_t lengths[DNS_TXT_RECORDS_MAX]; /* may hold NUL bytes: use these */
};

/*
 * Parses resp as the answer to the query (id, name) built above: header
 * (QR=1, same id, one question naming name with TXT/IN, TC=0, opcode 0),
 * RCODE (NOERROR or NXDOMAIN are answers; any other is an error), and the
 * answer section: TXT records of the name asked, or of the names a CNAME
 * chain inside this response leads to (at most 8 links, no loop); records
 * of other names are ignored. Compression pointers must point backwards
 * (so no loop) and names stay within 255 bytes. Returns 0 with r filled
 * (free it with dns_txt_result_free), or -1 with why in err.
 */
int dns_parse_txt_response(const uint8_t *resp, size_t len, uint16_t id, const char *name,
			   struct dns_txt_result *r, char *err, size_t errlen);
void dns_txt_result_free(struct dns_txt_result *r);

/*
 * Asks server ("host:port", an IPv4 or IPv6 literal; "[v6]:port" too) for
 * the TXT records of name over UDP, waiting at most timeout_ms for an
 * answer that parses (stray datagrams are ignored). Returns 0 with r
 * filled, or -1 with why in err.
 */
int dns_txt_query(const char *server, const char *name, int timeout_ms, struct dns_txt_result *r, char *err,
		  size_t errlen);

/* Whether server is what dns_txt_query takes: "a.b.c.d:port" or
 * "[v6]:port", a literal address and a port 1..65535 (no name to resolve). */
bool dns_server_valid(const char *server);

#endif
