/* A minimal DNS client for TXT records: see dns.h. */
#include "dns.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define TYPE_CNAME 5
#define TYPE_TXT 16
#define CLASS_IN 1
#define WIRE_NAME_MAX 255
#define CNAME_LINKS_MAX 8

static int label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* name in presentation form -> wire form (lower case); returns its length or -1 */
static int name_to_wire(const char *name, uint8_t *out)
{
	size_t n = strlen(name), pos = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX)
		return -1;
	for (size_t i = 0; i < n;) {
		size_t l = 0;

		while (i + l < n && name[i + l] != '.') {
			if (!label_char((unsigned char)name[i + l]))
				return -1;
			l++;
		}
		if (l == 0 || l > 63)
			return -1;
		out[pos++] = (uint8_t)l;
		for (size_t k = 0; k < l; k++)
			out[pos++] = lower((unsigned char)name[i + k]);
		i += l + 1;
	}
	out[pos++] = 0;
	return (int)pos;
}

bool dns_name_valid(const char *name)
{
	uint8_t wire[WIRE_NAME_MAX + 2];

	return name && name_to_wire(name, wire) > 0;
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

int dns_build_txt_query(uint8_t *out, size_t outlen, uint16_t id, const char *name)
{
	uint8_t wire[WIRE_NAME_MAX + 2];
	int wl = name ? name_to_wire(name, wire) : -1;

	if (wl < 0 || outlen < 12 + (size_t)wl + 4)
		return -1;
	memset(out, 0, 12);
	put16(out, id);
	out[2] = 0x01; /* RD */
	put16(out + 4, 1);
	memcpy(out + 12, wire, (size_t)wl);
	put16(out + 12 + wl, TYPE_TXT);
	put16(out + 14 + wl, CLASS_IN);
	return 12 + wl + 4;
}

/*
 * Reads the name at *off into out (wire form, lower case) and moves *off
 * past it. A compression pointer must point before the label holding it,
 * so following pointers always ends.
 */
static int read_name(const uint8_t *m, size_t len, size_t *off, uint8_t out[WIRE_NAME_MAX + 1], size_t *outlen,
		     char *err, size_t errlen)
{
	size_t pos = *off, n = 0;
	int jumped = 0;

	for (;;) {
		unsigned l;

		if (pos >= len) {
			snprintf(err, errlen, "a name runs past the end of the response");
			return -1;
		}
		l = m[pos];
		if ((l & 0xC0) == 0xC0) {
			size_t target;

			if (pos + 1 >= len) {
				snprintf(err, errlen, "a compression pointer runs past the end of the response");
				return -1;
			}
			target = (size_t)(l & 0x3F) << 8 | m[pos + 1];
			if (target >= pos) {
				snprintf(err, errlen, "a compression pointer points forwards (a loop)");
				return -1;
			}
			if (!jumped)
				*off = pos + 2;
			jumped = 1;
			pos = target;
			continue;
		}
		if (l & 0xC0) {
			snprintf(err, errlen, "a label of an unknown type (0x%02x)", l);
			return -1;
		}
		if (pos + 1 + l > len) {
			snprintf(err, errlen, "a label runs past the end of the response");
			return -1;
		}
		if (n + 1 + l > WIRE_NAME_MAX) {
			snprintf(err, errlen, "a name longer than 255 bytes");
			return -1;
		}
		out[n++] = (uint8_t)l;
		for (unsigned k = 0; k < l; k++)
			out[n++] = lower(m[pos + 1 + k]);
		pos += 1 + l;
		if (l == 0)
			break;
	}
	if (!jumped)
		*off = pos;
	*outlen = n;
	return 0;
}

struct rr {
	uint8_t owner[WIRE_NAME_MAX + 1];
	size_t owner_len;
	unsigned type, class;
	size_t rdata, rdlen;
};

static int read_rr(const uint8_t *m, size_t len, size_t *off, struct rr *rr, char *err, size_t errlen)
{
	if (read_name(m, len, off, rr->owner, &rr->owner_len, err, errlen) != 0)
		return -1;
	if (*off + 10 > len) {
		snprintf(err, errlen, "a record runs past the end of the response");
		return -1;
	}
	rr->type = get16(m + *off);
	rr->class = get16(m + *off + 2);
	rr->rdlen = get16(m + *off + 8);
	rr->rdata = *off + 10;
	if (rr->rdata + rr->rdlen > len) {
		snprintf(err, errlen, "record data runs past the end of the response");
		return -1;
	}
	*off = rr->rdata + rr->rdlen;
	return 0;
}

static int same_name(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

void dns_txt_result_free(struct dns_txt_result *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->records[i]);
	memset(r, 0, sizeof *r);
}

static int add_txt(const uint8_t *m, const struct rr *rr, struct dns_txt_result *r, char *err, size_t errlen)
{
	size_t p = rr->rdata, end = rr->rdata + rr->rdlen, n = 0;
	char *txt;

	if (rr->rdlen == 0) {
		snprintf(err, errlen, "a TXT record without a string");
		return -1;
	}
	if (r->count == DNS_TXT_RECORDS_MAX) {
		snprintf(err, errlen, "more than %d TXT records", DNS_TXT_RECORDS_MAX);
		return -1;
	}
	if (rr->rdlen > DNS_TXT_MAX) {
		snprintf(err, errlen, "a TXT record longer than %d bytes", DNS_TXT_MAX);
		return -1;
	}
	txt = malloc(rr->rdlen + 1);
	if (!txt) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (p < end) {
		size_t l = m[p];

		if (p + 1 + l > end) {
			free(txt);
			snprintf(err, errlen, "a TXT string runs past its record");
			return -1;
		}
		memcpy(txt + n, m + p + 1, l);
		n += l;
		p += 1 + l;
	}
	txt[n] = '\0';
	r->records[r->count] = txt;
	r->lengths[r->count++] = n;
	return 0;
}

int dns_parse_txt_response(const uint8_t *m, size_t len, uint16_t id, const char *name,
			   struct dns_txt_result *r, char *err, size_t errlen)
{
	uint8_t asked[WIRE_NAME_MAX + 2], qname[WIRE_NAME_MAX + 1];
	uint8_t chain[CNAME_LINKS_MAX + 1][WIRE_NAME_MAX + 1];
	size_t chain_len[CNAME_LINKS_MAX + 1], links = 0, qlen, off = 12, answers_off;
	int wl = name ? name_to_wire(name, asked) : -1;
	unsigned flags, ancount;

	memset(r, 0, sizeof *r);
	if (wl < 0) {
		snprintf(err, errlen, "the name asked is not a DNS name");
		return -1;
	}
	if (len > DNS_RESPONSE_MAX) {
		snprintf(err, errlen, "a response larger than %d bytes", DNS_RESPONSE_MAX);
		return -1;
	}
	if (len < 12) {
		snprintf(err, errlen, "a response shorter than a DNS header");
		return -1;
	}
	flags = get16(m + 2);
	if (get16(m) != id || !(flags & 0x8000)) {
		snprintf(err, errlen, "not the answer to this query (id or QR)");
		return -1;
	}
	if ((flags >> 11 & 0xF) != 0) {
		snprintf(err, errlen, "an answer of another opcode (%u)", flags >> 11 & 0xF);
		return -1;
	}
	if (flags & 0x0200) {
		snprintf(err, errlen, "the answer was truncated (TC=1) and UDP is all this client speaks");
		return -1;
	}
	r->rcode = (int)(flags & 0xF);
	if (get16(m + 4) != 1) {
		snprintf(err, errlen, "an answer with %u questions, not 1", get16(m + 4));
		return -1;
	}
	if (read_name(m, len, &off, qname, &qlen, err, errlen) != 0)
		return -1;
	if (off + 4 > len) {
		snprintf(err, errlen, "the question runs past the end of the response");
		return -1;
	}
	if (!same_name(qname, qlen, asked, (size_t)wl) || get16(m + off) != TYPE_TXT || get16(m + off + 2) != CLASS_IN) {
		snprintf(err, errlen, "the answer is to another question");
		return -1;
	}
	off += 4;
	if (r->rcode == DNS_RCODE_NXDOMAIN)
		return 0;
	if (r->rcode != DNS_RCODE_NOERROR) {
		snprintf(err, errlen, "the server answered rcode %d%s", r->rcode,
			 r->rcode == DNS_RCODE_SERVFAIL ? " (SERVFAIL)" : r->rcode == 5 ? " (REFUSED)" : "");
		return -1;
	}
	ancount = get16(m + 6);
	answers_off = off;
	/* the CNAME chain from the name asked, within this response only */
	memcpy(chain[0], asked, (size_t)wl);
	chain_len[0] = (size_t)wl;
	for (;;) {
		size_t o = answers_off;
		int found = 0;
		struct rr rr;

		for (unsigned i = 0; i < ancount && !found; i++) {
			if (read_rr(m, len, &o, &rr, err, errlen) != 0)
				return -1;
			if (rr.type != TYPE_CNAME || rr.class != CLASS_IN ||
			    !same_name(rr.owner, rr.owner_len, chain[links], chain_len[links]))
				continue;
			if (links == CNAME_LINKS_MAX) {
				snprintf(err, errlen, "a CNAME chain longer than %d links", CNAME_LINKS_MAX);
				return -1;
			}
			size_t t = rr.rdata, tl;

			if (read_name(m, rr.rdata + rr.rdlen, &t, chain[links + 1], &tl, err, errlen) != 0)
				return -1;
			for (size_t k = 0; k <= links; k++)
				if (same_name(chain[k], chain_len[k], chain[links + 1], tl)) {
					snprintf(err, errlen, "a CNAME loop");
					return -1;
				}
			chain_len[++links] = tl;
			found = 1;
		}
		if (!found)
			break;
	}
	off = answers_off;
	for (unsigned i = 0; i < ancount; i++) {
		struct rr rr;

		if (read_rr(m, len, &off, &rr, err, errlen) != 0)
			goto fail;
		if (rr.type != TYPE_TXT || rr.class != CLASS_IN ||
		    !same_name(rr.owner, rr.owner_len, chain[links], chain_len[links]))
			continue;
		if (add_txt(m, &rr, r, err, errlen) != 0)
			goto fail;
	}
	return 0;
fail:
	dns_txt_result_free(r);
	return -1;
}

static int parse_server(const char *server, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[64];
	const char *colon, *port_s;
	char *end;
	long port;
	size_t hl;

	if (!server)
		return -1;
	if (server[0] == '[') {
		const char *close = strchr(server, ']');

		if (!close || close[1] != ':')
			return -1;
		hl = (size_t)(close - server - 1);
		if (hl >= sizeof host)
			return -1;
		memcpy(host, server + 1, hl);
		port_s = close + 2;
	} else {
		colon = strrchr(server, ':');
		if (!colon || strchr(server, ':') != colon)
			return -1;
		hl = (size_t)(colon - server);
		if (hl >= sizeof host)
			return -1;
		memcpy(host, server, hl);
		port_s = colon + 1;
	}
	host[hl] = '\0';
	errno = 0;
	port = strtol(port_s, &end, 10);
	if (errno || end == port_s || *end || port < 1 || port > 65535)
		return -1;
	memset(ss, 0, sizeof *ss);
	if (server[0] != '[') {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -1;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*sl = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -1;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sl = sizeof *in6;
	}
	return 0;
}

bool dns_server_valid(const char *server)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	return parse_server(server, &ss, &sl) == 0;
}

int dns_txt_query(const char *server, const char *name, int timeout_ms, struct dns_txt_result *r, char *err,
		  size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	uint8_t q[DNS_QUERY_MAX], *resp;
	uint16_t id;
	int qlen, fd, rc = -1;
	int64_t deadline = (int64_t)now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	memset(r, 0, sizeof *r);
	if (parse_server(server, &ss, &sl) != 0) {
		snprintf(err, errlen, "a resolver address that is not ip:port or [ipv6]:port");
		return -1;
	}
	if (getrandom(&id, sizeof id, 0) != sizeof id) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	qlen = dns_build_txt_query(q, sizeof q, id, name);
	if (qlen < 0) {
		snprintf(err, errlen, "not a DNS name");
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	resp = malloc(DNS_RESPONSE_MAX + 1);
	if (!resp) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* connected: only datagrams from the server are received */
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0 || send(fd, q, (size_t)qlen, 0) != qlen) {
		snprintf(err, errlen, "sending to %s: %s", server, strerror(errno));
		goto out;
	}
	for (;;) {
		int64_t left = deadline - (int64_t)now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		int pr;

		if (left <= 0) {
			snprintf(err, errlen, "no answer from %s in %d ms", server, timeout_ms);
			goto out;
		}
		pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		if (pr == 0)
			continue;
		n = recv(fd, resp, DNS_RESPONSE_MAX + 1, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(err, errlen, "receiving from %s: %s", server, strerror(errno));
			goto out;
		}
		/* a stray datagram (another id, or not an answer) is not ours */
		if (n < 12 || get16(resp) != id || !(resp[2] & 0x80))
			continue;
		rc = dns_parse_txt_response(resp, (size_t)n, id, name, r, err, errlen);
		goto out;
	}
out:
	free(resp);
	close(fd);
	return rc;
}
