/* The SQL migrations compiled into this binary (migrations/embed.py writes the
 * table from migrations/NNNN_name.sql at build time). */
#ifndef CERTWARD_STORE_MIGRATIONS_H
#define CERTWARD_STORE_MIGRATIONS_H

#include <stddef.h>

struct migration {
	int version;        /* NNNN of the file name: 1, 2, 3, ... */
	const char *name;   /* the file name's part after NNNN_, without .sql */
	const char *sha256; /* hex SHA-256 of the file's bytes */
	const char *sql;    /* the file's bytes */
};

/* In version order, terminated by an all-zero entry. */
extern const struct migration migrations[];
extern const size_t migrations_count;

#endif
