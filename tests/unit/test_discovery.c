/* Filesystem discovery (agent/discovery.h) on a directory tree made with
 * the openssl CLI: a PEM leaf, a DER certificate, a chain file of two, a
 * file holding only a key, a bundle of key and certificate, an Ed25519
 * certificate, a link to a certificate, a link loop, an oversize file, a
 * FIFO and garbage. What is found is checked field by field against what
 * openssl says of the same files; what is not found stays out; no key
 * material reaches the report; every limit is crossed. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "discovery.h"

#define NEWEC "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"

static char dir[] = "/tmp/cw-discovery-XXXXXX";
static const struct discovery_limits LIMITS = {.max_files = 1000, .max_file_size = 65536, .max_certs = 5000,
					       .max_depth = 8};

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048], full[2400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	snprintf(full, sizeof full, "cd %s && { %s; } >>log 2>&1", dir, cmd);
	cr_assert_eq(system(full), 0, "%s failed (see %s/log)", cmd, dir);
}

/* the first line a command run in dir prints (static) */
static const char *line_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *line_of(const char *fmt, ...)
{
	static char buf[4096];
	char cmd[2048], full[2400];
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	snprintf(full, sizeof full, "cd %s && { %s; } 2>/dev/null", dir, cmd);
	p = popen(full, "r");
	cr_assert(p);
	if (!fgets(buf, sizeof buf, p))
		buf[0] = '\0';
	pclose(p);
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

static char *slurp(const char *name)
{
	char path[512];
	FILE *f;
	char *buf = calloc(1, 1 << 16);

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	cr_assert(f && buf, "%s", name);
	fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	return buf;
}

/* openssl's SHA-256 fingerprint of a PEM or DER file, as the report has it */
static const char *fingerprint(const char *name, const char *form)
{
	static char fp[65];
	const char *l = line_of("openssl x509 -in %s -inform %s -noout -fingerprint -sha256", name, form);
	const char *p = strchr(l, '=');
	size_t n = 0;

	cr_assert(p, "no fingerprint of %s: %s", name, l);
	for (p++; *p && n < 64; p++)
		if (*p != ':')
			fp[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p + 32 : *p);
	fp[n] = '\0';
	cr_assert_eq(n, 64);
	return fp;
}

static void tree(void)
{
	cr_assert(mkdtemp(dir));
	sh("mkdir -p sub/deeper chain keys");
	/* a PEM leaf with every kind of name */
	sh(NEWEC " -x509 -keyout leaf.key -out leaf.pem -subj /CN=leaf.example.com/O=Example -days 30"
		 " -addext basicConstraints=critical,CA:FALSE -addext subjectAltName=DNS:leaf.example.com,DNS:www.leaf.example.com,IP:192.0.2.7,"
		 "IP:2001:db8::7,email:ops@example.com,URI:https://leaf.example.com/id");
	/* an RSA certificate in DER, two levels down */
	sh("openssl req -newkey rsa:2048 -nodes -x509 -keyout rsa.key -out rsa.pem -subj /CN=rsa.example.com"
	   " -days 30 && openssl x509 -in rsa.pem -outform DER -out sub/deeper/server.der");
	/* a chain: a leaf and the CA that issued it */
	sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -x509 -keyout ca.key -out ca.pem"
	   " -subj /CN=Test-CA -days 60 -addext basicConstraints=critical,CA:TRUE"
	   " -addext keyUsage=critical,keyCertSign,cRLSign");
	sh(NEWEC " -keyout issued.key -out issued.csr -subj /CN=issued.example.com");
	sh("openssl x509 -req -in issued.csr -CA ca.pem -CAkey ca.key -set_serial 0x00c0ffee -days 10"
	   " -out issued.pem && cat issued.pem ca.pem > chain/fullchain.pem");
	/* a key alone (PEM, and DER: a SEQUENCE that is no certificate), and a
	 * bundle of a key and its certificate */
	sh("cp issued.key keys/only.key && openssl pkey -in issued.key -outform DER -out keys/only.der");
	sh("cat issued.key issued.pem > bundle.pem");
	sh("openssl req -newkey ed25519 -nodes -x509 -keyout ed.key -out sub/ed25519.crt -subj /CN=ed.example.com"
	   " -days 30");
	/* the same certificate twice in one file */
	sh("cat leaf.pem leaf.pem > sub/twice.pem");
	/* links: to a certificate (read), to the tree itself (never followed) */
	sh("ln -s ../leaf.pem sub/link.pem && ln -s .. sub/loop && ln -s . loop2 && ln -s missing.pem dangling.pem");
	/* no certificates: garbage, text, a FIFO, an oversize file */
	sh("head -c 3000 /dev/urandom > sub/garbage.bin && echo 'hello, not a certificate' > notes.txt");
	sh("mkfifo sub/fifo.pem");
	sh("head -c 70000 /dev/zero > big.bin");
	/* the keys and requests made above leave the scanned tree */
	sh("mkdir ../%s-keys && mv leaf.key rsa.key ca.key issued.key ed.key issued.csr rsa.pem ca.pem issued.pem"
	   " ../%s-keys/", strrchr(dir, '/') + 1, strrchr(dir, '/') + 1);
}

static void cleanup(void)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf %s %s-keys", dir, dir);
	system(cmd);
}

static json_t *scan(const struct discovery_limits *lim)
{
	const char *dirs[] = {dir};
	char why[256] = "";
	json_t *r = discovery_scan(dirs, 1, lim, why, sizeof why);

	cr_assert(r, "scan failed: %s", why);
	return r;
}

/* the certificate found at dir/rel with that fingerprint, or NULL */
static json_t *found(json_t *report, const char *rel, const char *fp)
{
	char path[512];
	size_t i;
	json_t *c;

	snprintf(path, sizeof path, "%s/%s", dir, rel);
	json_array_foreach(json_object_get(report, "certificates"), i, c)
		if (strcmp(json_string_value(json_object_get(c, "source_path")), path) == 0 &&
		    (!fp || strcmp(json_string_value(json_object_get(c, "fingerprint_sha256")), fp) == 0))
			return c;
	return NULL;
}

static size_t found_at(json_t *report, const char *rel)
{
	char path[512];
	size_t i, n = 0;
	json_t *c;

	snprintf(path, sizeof path, "%s/%s", dir, rel);
	json_array_foreach(json_object_get(report, "certificates"), i, c)
		n += strcmp(json_string_value(json_object_get(c, "source_path")), path) == 0;
	return n;
}

static bool error_has(json_t *report, const char *rel, const char *what)
{
	char path[512];
	size_t i;
	json_t *e;

	snprintf(path, sizeof path, "%s/%s: ", dir, rel);
	json_array_foreach(json_object_get(report, "errors"), i, e) {
		const char *t = json_string_value(e);

		if ((!rel || strncmp(t, path, strlen(path)) == 0) && strstr(t, what))
			return true;
	}
	return false;
}

static const char *str(json_t *c, const char *k)
{
	const char *v = json_string_value(json_object_get(c, k));

	cr_assert(v, "no %s", k);
	return v;
}

TestSuite(discovery, .init = tree, .fini = cleanup, .timeout = 60);

Test(discovery, finds_what_is_there_and_nothing_else)
{
	json_t *r = scan(&LIMITS), *c, *sans;
	char *leaf_pem = slurp("leaf.pem"), *text;
	const char *leaf_fp = fingerprint("leaf.pem", "PEM");
	size_t i;

	/* leaf.pem, link.pem, twice.pem (once), server.der, fullchain.pem (2),
	 * bundle.pem, ed25519.crt */
	cr_assert_eq(json_array_size(json_object_get(r, "certificates")), 8, "%s",
		     json_dumps(r, JSON_INDENT(1)));
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "directories"), 0)), dir);
	cr_assert(json_is_integer(json_object_get(r, "scan_duration_ms")));

	c = found(r, "leaf.pem", leaf_fp);
	cr_assert(c);
	cr_assert_str_eq(str(c, "common_name"), "leaf.example.com");
	cr_assert_str_eq(str(c, "subject_dn"), "O=Example,CN=leaf.example.com");
	cr_assert_str_eq(str(c, "issuer_dn"), "O=Example,CN=leaf.example.com");
	cr_assert_str_eq(str(c, "key_algorithm"), "ECDSA");
	cr_assert_eq(json_integer_value(json_object_get(c, "key_size")), 256);
	cr_assert(json_is_false(json_object_get(c, "is_ca")));
	cr_assert_str_eq(str(c, "source_format"), "PEM");
	/* openssl writes PEM as we do: the file is the certificate alone */
	cr_assert_str_eq(str(c, "pem_data"), leaf_pem);
	sans = json_object_get(c, "sans");
	cr_assert_eq(json_array_size(sans), 6);
	{
		static const char *const want[] = {"leaf.example.com", "www.leaf.example.com", "192.0.2.7",
						   "2001:db8::7", "ops@example.com", "https://leaf.example.com/id"};

		for (i = 0; i < 6; i++)
			cr_assert_str_eq(json_string_value(json_array_get(sans, i)), want[i]);
	}
	{
		/* serial: openssl prints upper-case hex */
		char serial[200];
		const char *s = strchr(line_of("openssl x509 -in leaf.pem -noout -serial"), '=') + 1;
		size_t n = 0;

		while (*s == '0' && s[1])
			s++;
		for (; *s; s++)
			serial[n++] = (char)(*s >= 'A' && *s <= 'F' ? *s + 32 : *s);
		serial[n] = '\0';
		cr_assert_str_eq(str(c, "serial_number"), serial);
	}
	{
		/* not_after as openssl says it, in RFC 3339 */
		char want[32];
		struct tm tm = {0};
		const char *na = strchr(line_of("openssl x509 -in leaf.pem -noout -enddate"), '=') + 1;

		cr_assert(strptime(na, "%b %d %H:%M:%S %Y GMT", &tm), "%s", na);
		strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
		cr_assert_str_eq(str(c, "not_after"), want);
		cr_assert_eq(strlen(str(c, "not_before")), 20);
	}

	/* the link to the leaf is read, and reported where it is */
	cr_assert(found(r, "sub/link.pem", leaf_fp));
	cr_assert_eq(found_at(r, "sub/twice.pem"), 1, "the same certificate twice in a file is one");

	c = found(r, "sub/deeper/server.der", fingerprint("sub/deeper/server.der", "DER"));
	cr_assert(c, "the DER certificate");
	cr_assert_str_eq(str(c, "source_format"), "DER");
	cr_assert_str_eq(str(c, "key_algorithm"), "RSA");
	cr_assert_eq(json_integer_value(json_object_get(c, "key_size")), 2048);
	cr_assert_str_eq(str(c, "common_name"), "rsa.example.com");
	cr_assert(strstr(str(c, "pem_data"), "-----BEGIN CERTIFICATE-----\n") == str(c, "pem_data"));

	cr_assert_eq(found_at(r, "chain/fullchain.pem"), 2);
	c = json_array_get(json_object_get(r, "certificates"), 0);
	json_array_foreach(json_object_get(r, "certificates"), i, c) {
		if (strstr(str(c, "source_path"), "fullchain") && strcmp(str(c, "common_name"), "Test-CA") == 0)
			break;
	}
	cr_assert(c && strcmp(str(c, "common_name"), "Test-CA") == 0, "the chain's CA");
	cr_assert(json_is_true(json_object_get(c, "is_ca")));
	cr_assert_eq(json_integer_value(json_object_get(c, "key_size")), 384);
	json_array_foreach(json_object_get(r, "certificates"), i, c)
		if (strstr(str(c, "source_path"), "fullchain") && strcmp(str(c, "common_name"), "issued.example.com") == 0)
			break;
	cr_assert(c, "the chain's leaf");
	cr_assert_str_eq(str(c, "serial_number"), "c0ffee");
	cr_assert_str_eq(str(c, "issuer_dn"), "CN=Test-CA");

	cr_assert_eq(found_at(r, "bundle.pem"), 1, "the bundle's certificate, not its key");
	c = found(r, "sub/ed25519.crt", NULL);
	cr_assert(c);
	cr_assert_str_eq(str(c, "key_algorithm"), "Ed25519");
	cr_assert_eq(json_integer_value(json_object_get(c, "key_size")), 256);

	/* nothing from keys, garbage, text, the FIFO, through the loops */
	cr_assert_eq(found_at(r, "keys/only.key") + found_at(r, "keys/only.der") + found_at(r, "sub/garbage.bin") +
			     found_at(r, "notes.txt") + found_at(r, "sub/fifo.pem"),
		     0);
	json_array_foreach(json_object_get(r, "certificates"), i, c)
		cr_assert(!strstr(str(c, "source_path"), "loop"), "followed a link to a directory: %s",
			  str(c, "source_path"));
	/* only the oversize file is an error; keys and garbage are not */
	cr_assert(error_has(r, "big.bin", "larger than max_file_size (65536 bytes)"));
	cr_assert_eq(json_array_size(json_object_get(r, "errors")), 1, "%s",
		     json_dumps(json_object_get(r, "errors"), 0));

	/* no key material anywhere in the report */
	text = json_dumps(r, JSON_COMPACT);
	cr_assert(!strstr(text, "PRIVATE KEY"));
	free(text);
	free(leaf_pem);
	json_decref(r);
}

Test(discovery, no_key_material_in_the_report)
{
	char keyfile[600], line[256] = "", *text;
	json_t *r = scan(&LIMITS);
	FILE *f;

	/* every base64 line of the bundle's key (still in the tree) */
	snprintf(keyfile, sizeof keyfile, "%s/keys/only.key", dir);
	f = fopen(keyfile, "r");
	cr_assert(f);
	text = json_dumps(r, JSON_COMPACT);
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "-----", 5) != 0 && strlen(line) > 16)
			cr_assert(!strstr(text, line), "key text in the report: %s", line);
	}
	fclose(f);
	cr_assert(!strstr(text, "PRIVATE"));
	free(text);
	json_decref(r);
}

Test(discovery, limits)
{
	struct discovery_limits lim = LIMITS;
	json_t *r;

	lim.max_certs = 2;
	r = scan(&lim);
	cr_assert_eq(json_array_size(json_object_get(r, "certificates")), 2);
	cr_assert(error_has(r, NULL, "max_certs (2) certificates found"));
	json_decref(r);

	lim = LIMITS;
	lim.max_files = 1;
	r = scan(&lim);
	cr_assert_leq(json_array_size(json_object_get(r, "certificates")), 2);
	cr_assert(error_has(r, NULL, "max_files (1) files read"));
	json_decref(r);

	/* depth 0: the top directory's files only */
	lim = LIMITS;
	lim.max_depth = 0;
	r = scan(&lim);
	cr_assert_eq(found_at(r, "sub/deeper/server.der") + found_at(r, "chain/fullchain.pem"), 0);
	cr_assert_eq(found_at(r, "leaf.pem"), 1);
	json_decref(r);
	lim.max_depth = 1;
	r = scan(&lim);
	cr_assert_eq(found_at(r, "sub/deeper/server.der"), 0);
	cr_assert_eq(found_at(r, "chain/fullchain.pem"), 2);
	json_decref(r);

	/* a file of exactly max_file_size is read */
	lim = LIMITS;
	lim.max_file_size = 70000;
	r = scan(&lim);
	cr_assert_eq(json_array_size(json_object_get(r, "errors")), 0);
	json_decref(r);
}

Test(discovery, refused_arguments)
{
	const char *dirs[33];
	struct discovery_limits lim = LIMITS;
	char why[256];

	for (int i = 0; i < 33; i++)
		dirs[i] = dir;
	cr_assert_null(discovery_scan(dirs, 33, &lim, why, sizeof why));
	cr_assert(strstr(why, "at most 32"), "%s", why);
	cr_assert_null(discovery_scan(dirs, 1, NULL, why, sizeof why));
	lim.max_certs = 5001;
	cr_assert_null(discovery_scan(dirs, 1, &lim, why, sizeof why));
	lim = LIMITS;
	lim.max_file_size = 0;
	cr_assert_null(discovery_scan(dirs, 1, &lim, why, sizeof why));
	lim = LIMITS;
	dirs[0] = "";
	cr_assert_null(discovery_scan(dirs, 1, &lim, why, sizeof why));
	{
		char longdir[1100];

		memset(longdir, 'a', sizeof longdir - 1);
		longdir[0] = '/';
		longdir[sizeof longdir - 1] = '\0';
		dirs[0] = longdir;
		cr_assert_null(discovery_scan(dirs, 1, &lim, why, sizeof why));
		cr_assert(strstr(why, "1024"), "%s", why);
	}
}

Test(discovery, directories_missing_overlapping_and_relative)
{
	char missing[600], sub[600], cwd[600];
	const char *dirs[3] = {missing, dir, sub};
	char why[256];
	json_t *r;

	snprintf(missing, sizeof missing, "%s/no-such-dir", dir);
	snprintf(sub, sizeof sub, "%s/sub/", dir);
	r = discovery_scan(dirs, 3, &LIMITS, why, sizeof why);
	cr_assert(r, "%s", why);
	cr_assert(error_has(r, "no-such-dir", "No such file or directory"));
	/* sub is walked once, as part of dir: nothing twice */
	cr_assert_eq(json_array_size(json_object_get(r, "certificates")), 8);
	snprintf(sub, sizeof sub, "%s/sub", dir);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "directories"), 2)), sub);
	json_decref(r);

	/* a relative directory is reported absolute, without its trailing slash */
	cr_assert(getcwd(cwd, sizeof cwd));
	cr_assert_eq(chdir(dir), 0);
	dirs[0] = "sub/";
	r = discovery_scan(dirs, 1, &LIMITS, why, sizeof why);
	cr_assert(r, "%s", why);
	cr_assert_eq(chdir(cwd), 0);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "directories"), 0)), sub);
	cr_assert(found(r, "sub/link.pem", NULL));
	json_decref(r);
}

Test(discovery, paths_the_report_cannot_carry)
{
	json_t *r;

	/* a certificate under a name that is not UTF-8: counted, not sent */
	sh("cp sub/ed25519.crt \"$(printf 'bad\\377name.pem')\"");
	r = scan(&LIMITS);
	cr_assert(error_has(r, NULL, "bad\\xffname.pem: 1 certificates not reported"), "%s",
		  json_dumps(json_object_get(r, "errors"), 0));
	json_decref(r);
}

Test(discovery, unreadable_file)
{
	json_t *r;

	if (geteuid() == 0)
		cr_skip_test("root reads everything");
	sh("chmod 000 notes.txt");
	r = scan(&LIMITS);
	cr_assert(error_has(r, "notes.txt", "Permission denied"));
	json_decref(r);
}

Test(discovery, errors_are_bounded)
{
	json_t *errors = json_array(), *certs = json_array();
	char buf[64];
	int i;

	/* each malformed certificate block is an entry; past 1000 the last
	 * entry counts the rest */
	for (i = 0; i < 1100; i++) {
		static const char bad[] = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";

		snprintf(buf, sizeof buf, "/x/%d.pem", i);
		cr_assert_eq(discovery_parse_file((const uint8_t *)bad, sizeof bad - 1, buf, certs, errors, 10), 0);
	}
	cr_assert_eq(json_array_size(errors), 1000);
	cr_assert_str_eq(json_string_value(json_array_get(errors, 0)), "/x/0.pem: certificate block 1 is not base64");
	cr_assert_str_eq(json_string_value(json_array_get(errors, 999)), "... and 101 more errors");
	json_decref(errors);
	json_decref(certs);
}

Test(discovery, parse_file_edges)
{
	json_t *errors = json_array(), *certs = json_array();
	char *pem = slurp("sub/ed25519.crt"), *two;
	size_t len = strlen(pem), n;
	uint8_t der[4096];
	FILE *f;
	char path[600];

	/* base64 that decodes to something that is no certificate */
	{
		static const char notcert[] = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";

		cr_assert_eq(discovery_parse_file((const uint8_t *)notcert, sizeof notcert - 1, "/a", certs, errors, 10), 0);
		cr_assert_str_eq(json_string_value(json_array_get(errors, 0)), "/a: certificate block 1: not a certificate");
	}
	/* a block without its END line */
	cr_assert_eq(discovery_parse_file((const uint8_t *)pem, len - 27, "/b", certs, errors, 10), 0);
	cr_assert(strstr(json_string_value(json_array_get(errors, 1)), "no END line"));
	/* CRLF line ends and text around the block */
	two = calloc(1, 3 * len + 64);
	strcpy(two, "subject=whatever\r\n");
	for (const char *p = pem; *p; p++) {
		if (*p == '\n')
			strcat(two, "\r");
		strncat(two, p, 1);
	}
	strcat(two, "trailing text\n");
	cr_assert_eq(discovery_parse_file((const uint8_t *)two, strlen(two), "/c", certs, errors, 10), 1);
	/* max_certs reached: nothing more */
	cr_assert_eq(discovery_parse_file((const uint8_t *)pem, len, "/d", certs, errors, 1), 0);
	/* a DER certificate with a byte after it: nothing, silently */
	snprintf(path, sizeof path, "%s/sub/deeper/server.der", dir);
	f = fopen(path, "rb");
	cr_assert(f);
	n = fread(der, 1, sizeof der - 1, f);
	fclose(f);
	der[n] = 0;
	cr_assert_eq(discovery_parse_file(der, n + 1, "/e", certs, errors, 10), 0);
	cr_assert_eq(discovery_parse_file(der, n - 1, "/e", certs, errors, 10), 0);
	cr_assert_eq(discovery_parse_file(der, n, "/e", certs, errors, 10), 1);
	/* the same again at the same path: not twice */
	cr_assert_eq(discovery_parse_file(der, n, "/e", certs, errors, 10), 0);
	cr_assert_eq(json_array_size(errors), 2, "%s", json_dumps(errors, 0));
	cr_assert_eq(discovery_parse_file(NULL, 0, "/f", certs, errors, 10), 0);
	free(two);
	free(pem);
	json_decref(errors);
	json_decref(certs);
}
