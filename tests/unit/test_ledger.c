/* The signing ledger (lib/ledger.h): lines that verify, and every way a
 * changed file shows: an altered byte, a removed or repeated line, a
 * crash's unfinished last line, a file others may read. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger.h"

static char dir[] = "/tmp/cw-ledger-XXXXXX", path[128];

static void setup(void)
{
	cr_assert(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/ledger", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(ledger, .init = setup, .fini = teardown);

static void append_n(int n)
{
	char why[256];
	struct ledger *l = ledger_open(path, why, sizeof why);

	cr_assert(l, "%s", why);
	for (int i = 0; i < n; i++) {
		uint8_t der[32];
		char serial[40];

		memset(der, i, sizeof der);
		snprintf(serial, sizeof serial, "%032x", i + 1);
		cr_assert_eq(ledger_append(l, i % 3 == 0 ? "certificate" : i % 3 == 1 ? "crl" : "ocsp", "ca-1",
					   i % 3 == 2 ? NULL : serial, der, sizeof der, why, sizeof why),
			     0, "%s", why);
	}
	ledger_close(l);
}

static char *slurp(size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 1 << 20);

	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static void spit(const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	fwrite(buf, 1, len, f);
	fclose(f);
	chmod(path, 0600);
}

Test(ledger, appends_verify_and_continue_after_reopen)
{
	struct ledger_check c;
	struct stat st;

	append_n(5);
	append_n(4);
	cr_assert_eq(ledger_verify_file(path, &c), 0, "%s", c.why);
	cr_assert_eq(c.entries, 9);
	cr_assert_not(c.partial_tail);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
}

Test(ledger, a_changed_byte_names_its_line)
{
	struct ledger_check c;
	size_t len;
	char *buf;
	char *line3;

	append_n(6);
	buf = slurp(&len);
	line3 = strchr(strchr(buf, '\n') + 1, '\n') + 1;
	/* the issuer of line 3: ca-1 -> ca-2 */
	*strstr(line3, "ca-1") = 'x';
	spit(buf, len);
	cr_assert_eq(ledger_verify_file(path, &c), -1);
	cr_assert_eq(c.bad_line, 3, "line %llu: %s", (unsigned long long)c.bad_line, c.why);
	cr_assert_eq(c.entries, 2);
	free(buf);
}

Test(ledger, a_removed_line_breaks_the_chain)
{
	struct ledger_check c;
	size_t len;
	char *buf, *l2, *l3;

	append_n(4);
	buf = slurp(&len);
	l2 = strchr(buf, '\n') + 1;
	l3 = strchr(l2, '\n') + 1;
	memmove(l2, l3, len - (size_t)(l3 - buf));
	spit(buf, len - (size_t)(l3 - l2));
	cr_assert_eq(ledger_verify_file(path, &c), -1);
	cr_assert_eq(c.bad_line, 2, "%s", c.why);
	free(buf);
}

Test(ledger, a_recomputed_line_still_breaks_the_next)
{
	struct ledger_check c;
	size_t len;
	char *buf;

	/* rewriting a line's hash to match its new contents is not enough:
	 * the next line names the old one */
	append_n(3);
	buf = slurp(&len);
	cr_assert_eq(ledger_verify_file(path, &c), 0);
	buf[strchr(buf, '\n') - buf - 1] ^= 1; /* the last hex digit of line 1's hash */
	spit(buf, len);
	cr_assert_eq(ledger_verify_file(path, &c), -1);
	cr_assert_eq(c.bad_line, 1, "%s", c.why);
	free(buf);
}

Test(ledger, an_unfinished_line_is_cut_at_open)
{
	struct ledger_check c;
	char why[256];
	size_t len;
	char *buf;
	struct ledger *l;

	append_n(3);
	buf = slurp(&len);
	spit(buf, len + 0); /* unchanged */
	/* a crash in the middle of the fourth line */
	memcpy(buf + len, "4 2026-11-25T17:40:01.1", 23);
	spit(buf, len + 23);
	cr_assert_eq(ledger_verify_file(path, &c), 0, "%s", c.why);
	cr_assert(c.partial_tail);
	cr_assert_eq(c.entries, 3);
	l = ledger_open(path, why, sizeof why);
	cr_assert(l, "%s", why);
	cr_assert(strstr(why, "unfinished"), "%s", why);
	cr_assert_eq(ledger_entries(l), 3);
	ledger_close(l);
	append_n(1);
	cr_assert_eq(ledger_verify_file(path, &c), 0, "%s", c.why);
	cr_assert_eq(c.entries, 4);
	cr_assert_not(c.partial_tail);
	free(buf);
}

Test(ledger, refuses_what_it_cannot_trust)
{
	char why[256];
	struct ledger_check c;

	append_n(2);
	chmod(path, 0644);
	cr_assert_null(ledger_open(path, why, sizeof why));
	cr_assert(strstr(why, "0600"), "%s", why);
	chmod(path, 0600);
	/* a broken file is not opened for more */
	{
		static const char bad[] = "1 2026-11-25T17:40:01.123Z certificate ca-1 01 x y z\n";

		spit(bad, strlen(bad));
	}
	cr_assert_null(ledger_open(path, why, sizeof why));
	cr_assert(strstr(why, "broken at line 1"), "%s", why);
	/* hostile lines: too long, too many fields, bad kind */
	ledger_check_init(&c);
	cr_assert_eq(ledger_check_line(&c, "1 2 3 4 5 6 7 8 9", 17), -1);
	ledger_check_init(&c);
	{
		static char big[LEDGER_LINE_MAX + 10];

		memset(big, 'a', sizeof big - 1);
		cr_assert_eq(ledger_check_line(&c, big, sizeof big - 1), -1);
		cr_assert_str_eq(c.why, "line too long");
	}
}

/* group commit: staged lines reach the file only together, at commit */
Test(ledger, staged_lines_are_written_together_at_commit)
{
	char why[256];
	struct ledger_check c;
	struct ledger *l;
	uint8_t der[8] = {1, 2, 3};

	append_n(2);
	l = ledger_open(path, why, sizeof why);
	cr_assert(l, "%s", why);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ledger_stage(l, "certificate", "ca-1", "0a", der, sizeof der, why, sizeof why), 0, "%s", why);
	cr_assert_eq(ledger_staged(l), 5);
	cr_assert_eq(ledger_verify_file(path, &c), 0);
	cr_assert_eq(c.entries, 2, "staged lines were written before the commit");
	cr_assert_eq(ledger_commit(l, why, sizeof why), 0, "%s", why);
	cr_assert_eq(ledger_staged(l), 0);
	cr_assert_eq(ledger_commits(l), 1);
	cr_assert_eq(ledger_verify_file(path, &c), 0, "%s", c.why);
	cr_assert_eq(c.entries, 7);
	/* lines staged and never committed are not in the file, and the chain
	 * goes on from what is */
	cr_assert_eq(ledger_stage(l, "crl", "ca-1", "01", der, sizeof der, why, sizeof why), 0);
	ledger_close(l);
	append_n(1);
	cr_assert_eq(ledger_verify_file(path, &c), 0, "%s", c.why);
	cr_assert_eq(c.entries, 8);
}
