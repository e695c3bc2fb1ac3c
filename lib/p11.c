#include "p11.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define PIN_MAX 256
#define ID_MAX 64
#define LABEL_MAX 64

struct p11_session {
	CK_SESSION_HANDLE h;
	pthread_mutex_t mu;
};

struct p11_token {
	/* configuration */
	char module[1024], token_label[33], key_label[LABEL_MAX + 1], pin_file[1024];
	long slot_cfg;
	uint8_t key_id[ID_MAX];
	size_t key_id_len;
	int nsessions;
	char *env_pin; /* a PIN from the environment: mlocked, not dumped */
	size_t env_pin_map;

	void *dl;
	CK_FUNCTION_LIST_PTR f;
	int initialized;

	/* state: written under the write lock, read under the read lock */
	pthread_rwlock_t state;
	int ready, opened, used;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE key;
	CK_KEY_TYPE key_type;
	struct p11_session s[P11_SESSIONS_MAX];
	unsigned rr;
	pthread_mutex_t why_mu;
	char why[300];
	/* a refused PIN: the PIN file as it was then */
	int pin_refused;
	struct stat pin_st;

	pthread_mutex_t count_mu;
	uint64_t signatures, failures, connects;
};

static _Thread_local struct p11_token *tl_token;
static _Thread_local int tl_session;

/* ---- return values ---- */

const char *p11_rv_name(unsigned long rv, char *buf, size_t len)
{
	static const struct {
		unsigned long rv;
		const char *name;
	} names[] = {
		{CKR_OK, "CKR_OK"},
		{CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
		{CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
		{CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
		{CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
		{CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
		{CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
		{CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
		{CKR_DATA_INVALID, "CKR_DATA_INVALID"},
		{CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
		{CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
		{CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
		{CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
		{CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"},
		{CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
		{CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
		{CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
		{CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
		{CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
		{CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
		{CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
		{CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
		{CKR_PIN_INVALID, "CKR_PIN_INVALID"},
		{CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
		{CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
		{CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
		{CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
		{CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
		{CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
		{CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
		{CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
		{CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
		{CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
		{CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
		{CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
		{CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
		{CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
		{CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
		{CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
		{CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
		{CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
		{CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].rv == rv)
			return names[i].name;
	snprintf(buf, len, "CKR_0x%lx", rv);
	return buf;
}

/* The token (or our sessions on it) is gone: nothing but a new connect helps. */
static int rv_fatal(CK_RV rv)
{
	switch (rv) {
	case CKR_GENERAL_ERROR:
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_MEMORY:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SESSION_CLOSED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_PIN_EXPIRED:
		return 1;
	default:
		return 0;
	}
}

static int fail_rv(char *why, size_t whylen, const char *call, CK_RV rv)
{
	char b[32];

	snprintf(why, whylen, "%s: %s", call, p11_rv_name(rv, b, sizeof b));
	return -1;
}

static void set_why(struct p11_token *t, const char *why)
{
	pthread_mutex_lock(&t->why_mu);
	snprintf(t->why, sizeof t->why, "%s", why);
	pthread_mutex_unlock(&t->why_mu);
}

/* ---- configuration ---- */

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "a1b2" or "a1:b2" into id; -1 when it is not hex or too long */
static int parse_id(const char *s, uint8_t *id, size_t *len)
{
	*len = 0;
	while (*s) {
		int hi, lo;

		if (*s == ':') {
			s++;
			continue;
		}
		if ((hi = hexval(s[0])) < 0 || (lo = hexval(s[1])) < 0 || *len == ID_MAX)
			return -1;
		id[(*len)++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	return 0;
}

static void pin_free(struct p11_token *t)
{
	if (t->env_pin) {
		explicit_bzero(t->env_pin, t->env_pin_map);
		munmap(t->env_pin, t->env_pin_map);
		t->env_pin = NULL;
	}
}

struct p11_token *p11_token_new(const struct p11_config *c, char *why, size_t whylen)
{
	struct p11_token *t;
	struct stat st;
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_RV rv;

	if (!c->module || c->module[0] != '/' || strlen(c->module) >= sizeof t->module) {
		snprintf(why, whylen, "pkcs11_module: an absolute path is required");
		return NULL;
	}
	if (stat(c->module, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "pkcs11_module %s: %s", c->module,
			 errno ? strerror(errno) : "not a regular file");
		return NULL;
	}
	if (st.st_mode & 002) {
		snprintf(why, whylen, "pkcs11_module %s: writable by anyone; refusing to load it", c->module);
		return NULL;
	}
	if ((!c->token_label || !*c->token_label) && c->slot < 0) {
		snprintf(why, whylen, "pkcs11: set the token label or the slot");
		return NULL;
	}
	if (c->token_label && strlen(c->token_label) > 32) {
		snprintf(why, whylen, "pkcs11_token_label: at most 32 characters");
		return NULL;
	}
	if ((!c->key_label || !*c->key_label) && (!c->key_id || !*c->key_id)) {
		snprintf(why, whylen, "pkcs11: set the key label or the key id");
		return NULL;
	}
	if (c->key_label && strlen(c->key_label) > LABEL_MAX) {
		snprintf(why, whylen, "pkcs11_key_label: at most %d characters", LABEL_MAX);
		return NULL;
	}
	if (c->sessions < 1 || c->sessions > P11_SESSIONS_MAX) {
		snprintf(why, whylen, "pkcs11_sessions: 1 to %d", P11_SESSIONS_MAX);
		return NULL;
	}
	if ((!c->pin_file || !*c->pin_file) == (!c->pin_env || !*c->pin_env)) {
		snprintf(why, whylen, "pkcs11: set exactly one of the PIN file and the PIN environment variable");
		return NULL;
	}
	if (!(t = calloc(1, sizeof *t))) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	snprintf(t->module, sizeof t->module, "%s", c->module);
	snprintf(t->token_label, sizeof t->token_label, "%s", c->token_label ? c->token_label : "");
	snprintf(t->key_label, sizeof t->key_label, "%s", c->key_label ? c->key_label : "");
	t->slot_cfg = c->slot;
	t->nsessions = c->sessions;
	pthread_rwlock_init(&t->state, NULL);
	pthread_mutex_init(&t->why_mu, NULL);
	pthread_mutex_init(&t->count_mu, NULL);
	for (int i = 0; i < P11_SESSIONS_MAX; i++)
		pthread_mutex_init(&t->s[i].mu, NULL);
	snprintf(t->why, sizeof t->why, "not connected yet");
	if (c->key_id && *c->key_id && parse_id(c->key_id, t->key_id, &t->key_id_len) != 0) {
		snprintf(why, whylen, "pkcs11_key_id: hexadecimal, at most %d bytes", ID_MAX);
		goto fail;
	}
	if (c->pin_file && *c->pin_file) {
		if (strlen(c->pin_file) >= sizeof t->pin_file) {
			snprintf(why, whylen, "pkcs11_pin_file: path too long");
			goto fail;
		}
		snprintf(t->pin_file, sizeof t->pin_file, "%s", c->pin_file);
	} else {
		char *v = getenv(c->pin_env);
		size_t n = v ? strlen(v) : 0;

		if (!v || !n || n > PIN_MAX) {
			snprintf(why, whylen, "pkcs11_pin_env: the environment variable %s is %s", c->pin_env,
				 !v ? "not set" : !n ? "empty" : "too long");
			goto fail;
		}
		t->env_pin_map = (size_t)sysconf(_SC_PAGESIZE);
		t->env_pin = mmap(NULL, t->env_pin_map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (t->env_pin == MAP_FAILED) {
			t->env_pin = NULL;
			snprintf(why, whylen, "out of memory");
			goto fail;
		}
		/* best effort: kept out of swap and of core dumps */
		(void)mlock(t->env_pin, t->env_pin_map);
		(void)madvise(t->env_pin, t->env_pin_map, MADV_DONTDUMP);
		memcpy(t->env_pin, v, n);
		explicit_bzero(v, n);
		unsetenv(c->pin_env);
	}
	t->dl = dlopen(t->module, RTLD_NOW | RTLD_LOCAL);
	if (!t->dl) {
		const char *e = dlerror();

		snprintf(why, whylen, "pkcs11_module %s: cannot load it: %s", t->module, e ? e : "dlopen failed");
		goto fail;
	}
	get = (CK_C_GetFunctionList)(uintptr_t)dlsym(t->dl, "C_GetFunctionList");
	if (!get) {
		snprintf(why, whylen, "pkcs11_module %s: not a PKCS#11 module (no C_GetFunctionList)", t->module);
		goto fail;
	}
	if ((rv = get(&t->f)) != CKR_OK || !t->f) {
		fail_rv(why, whylen, "C_GetFunctionList", rv);
		goto fail;
	}
	rv = t->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		fail_rv(why, whylen, "C_Initialize", rv);
		goto fail;
	}
	t->initialized = 1;
	return t;
fail:
	p11_token_free(t);
	return NULL;
}

static void close_sessions(struct p11_token *t)
{
	if (t->opened) {
		/* C_CloseAllSessions also logs out; a token that is gone says so, which changes nothing */
		for (int i = 0; i < t->nsessions; i++)
			if (t->s[i].h != CK_INVALID_HANDLE)
				t->f->C_CloseSession(t->s[i].h);
	}
	for (int i = 0; i < P11_SESSIONS_MAX; i++)
		t->s[i].h = CK_INVALID_HANDLE;
	t->opened = 0;
	t->ready = 0;
	t->key = CK_INVALID_HANDLE;
}

void p11_token_free(struct p11_token *t)
{
	if (!t)
		return;
	if (t->f) {
		pthread_rwlock_wrlock(&t->state);
		close_sessions(t);
		pthread_rwlock_unlock(&t->state);
		if (t->initialized)
			t->f->C_Finalize(NULL);
	}
	if (t->dl)
		dlclose(t->dl);
	pin_free(t);
	for (int i = 0; i < P11_SESSIONS_MAX; i++)
		pthread_mutex_destroy(&t->s[i].mu);
	pthread_rwlock_destroy(&t->state);
	pthread_mutex_destroy(&t->why_mu);
	pthread_mutex_destroy(&t->count_mu);
	free(t);
}

/* ---- connecting ---- */

/* the PIN into pin (NUL-terminated); the file's first line, or the copy
 * from the environment */
static int read_pin(struct p11_token *t, char *pin, size_t pinlen, struct stat *st, char *why, size_t whylen)
{
	char buf[PIN_MAX + 2];
	ssize_t n;
	int fd;

	if (t->env_pin) {
		snprintf(pin, pinlen, "%s", t->env_pin);
		return 0;
	}
	fd = open(t->pin_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(why, whylen, "pkcs11_pin_file %s: %s", t->pin_file, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		snprintf(why, whylen, "pkcs11_pin_file %s: not a regular file", t->pin_file);
		return -1;
	}
	if (st->st_mode & 007) {
		close(fd);
		snprintf(why, whylen, "pkcs11_pin_file %s: readable by others; make it mode 0600 or 0400",
			 t->pin_file);
		return -1;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) {
		snprintf(why, whylen, "pkcs11_pin_file %s: %s", t->pin_file, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!*buf || strlen(buf) > PIN_MAX || strlen(buf) >= pinlen) {
		explicit_bzero(buf, sizeof buf);
		snprintf(why, whylen, "pkcs11_pin_file %s: %s", t->pin_file,
			 *buf ? "the PIN is too long" : "no PIN on its first line");
		return -1;
	}
	memcpy(pin, buf, strlen(buf) + 1);
	explicit_bzero(buf, sizeof buf);
	return 0;
}

static int pin_changed(const struct p11_token *t)
{
	struct stat st;

	if (t->env_pin)
		return 0;
	if (stat(t->pin_file, &st) != 0)
		return 0;
	return st.st_ino != t->pin_st.st_ino || st.st_size != t->pin_st.st_size ||
	       st.st_mtim.tv_sec != t->pin_st.st_mtim.tv_sec || st.st_mtim.tv_nsec != t->pin_st.st_mtim.tv_nsec;
}

static void padded(const unsigned char *field, size_t n, char *out)
{
	memcpy(out, field, n);
	out[n] = '\0';
	for (size_t i = n; i > 0 && out[i - 1] == ' '; i--)
		out[i - 1] = '\0';
}

static int find_slot(struct p11_token *t, CK_SLOT_ID *slot, char *why, size_t whylen)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_RV rv = t->f->C_GetSlotList(CK_TRUE, slots, &n);

	if (rv != CKR_OK)
		return fail_rv(why, whylen, "C_GetSlotList", rv);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;
		char label[33];

		if (t->slot_cfg >= 0) {
			if (slots[i] != (CK_SLOT_ID)t->slot_cfg)
				continue;
			*slot = slots[i];
			return 0;
		}
		if (t->f->C_GetTokenInfo(slots[i], &info) != CKR_OK)
			continue;
		padded(info.label, sizeof info.label, label);
		if (strcmp(label, t->token_label) == 0) {
			*slot = slots[i];
			return 0;
		}
	}
	if (t->slot_cfg >= 0)
		snprintf(why, whylen, "no token in slot %ld", t->slot_cfg);
	else
		snprintf(why, whylen, "no token labelled \"%s\" is present", t->token_label);
	return -1;
}

/* objects of class cls with the configured label and/or id: the count (up
 * to max) into handles */
static int find_objects(struct p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *h,
			CK_ULONG max, CK_ULONG *found, int label, int id, CK_RV *rvout)
{
	CK_ATTRIBUTE tmpl[3];
	CK_ULONG n = 0;
	CK_RV rv;

	tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof cls};
	if (label && *t->key_label)
		tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, t->key_label, strlen(t->key_label)};
	if (id && t->key_id_len)
		tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, t->key_id, t->key_id_len};
	*found = 0;
	if ((rv = t->f->C_FindObjectsInit(s, tmpl, n)) == CKR_OK) {
		rv = t->f->C_FindObjects(s, h, max, found);
		t->f->C_FindObjectsFinal(s);
	}
	*rvout = rv;
	return rv == CKR_OK ? 0 : -1;
}

static const char *key_name(const struct p11_token *t, char *buf, size_t len)
{
	if (*t->key_label && t->key_id_len)
		snprintf(buf, len, "labelled \"%s\" with the configured id", t->key_label);
	else if (*t->key_label)
		snprintf(buf, len, "labelled \"%s\"", t->key_label);
	else
		snprintf(buf, len, "with the configured id");
	return buf;
}

int p11_connect(struct p11_token *t, unsigned flags, char *why, size_t whylen)
{
	char pin[PIN_MAX + 1], kn[120];
	struct stat st = {0};
	CK_OBJECT_HANDLE keys[2];
	CK_ULONG n;
	CK_RV rv;
	int rc = -1, tries;

	pthread_rwlock_wrlock(&t->state);
	close_sessions(t);
	for (tries = 0;; tries++) {
		if (find_slot(t, &t->slot, why, whylen) == 0)
			break;
		/* a module that saw its token go may see it again only after a new C_Initialize */
		if (tries > 0 || !t->used)
			goto out;
		{
			CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};

			t->f->C_Finalize(NULL);
			t->initialized = 0;
			rv = t->f->C_Initialize(&args);
			if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
				fail_rv(why, whylen, "C_Initialize", rv);
				goto out;
			}
			t->initialized = 1;
		}
	}
	t->used = 1;
	t->opened = 1;
	for (int i = 0; i < t->nsessions; i++) {
		rv = t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | ((flags & P11_RW) ? CKF_RW_SESSION : 0), NULL,
					 NULL, &t->s[i].h);
		if (rv != CKR_OK) {
			t->s[i].h = CK_INVALID_HANDLE;
			fail_rv(why, whylen, "C_OpenSession", rv);
			goto out;
		}
	}
	if (read_pin(t, pin, sizeof pin, &st, why, whylen) != 0)
		goto out;
	rv = t->f->C_Login(t->s[0].h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	explicit_bzero(pin, sizeof pin);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		fail_rv(why, whylen, "C_Login", rv);
		if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID ||
		    rv == CKR_PIN_LEN_RANGE) {
			/* not tried again with the same PIN: the token would lock */
			t->pin_refused = 1;
			t->pin_st = st;
			snprintf(why + strlen(why), whylen - strlen(why), " (the PIN %s%s)",
				 rv == CKR_PIN_LOCKED ? "is locked" : "was refused",
				 t->env_pin ? "; restart with the right one" : "; not tried again until the PIN file changes");
		}
		goto out;
	}
	t->pin_refused = 0;
	if (find_objects(t, t->s[0].h, CKO_PRIVATE_KEY, keys, 2, &n, 1, 1, &rv) != 0) {
		fail_rv(why, whylen, "C_FindObjects", rv);
		goto out;
	}
	if (n == 0 && (flags & P11_NO_KEY)) {
		t->ready = 1;
		rc = 0;
		goto out;
	}
	if (n != 1) {
		snprintf(why, whylen, n ? "several private keys %s on the token; give the key id too"
				       : "no private key %s on the token",
			 key_name(t, kn, sizeof kn));
		goto out;
	}
	t->key = keys[0];
	{
		CK_ATTRIBUTE a = {CKA_KEY_TYPE, &t->key_type, sizeof t->key_type};

		if ((rv = t->f->C_GetAttributeValue(t->s[0].h, t->key, &a, 1)) != CKR_OK) {
			fail_rv(why, whylen, "C_GetAttributeValue(CKA_KEY_TYPE)", rv);
			goto out;
		}
		if (t->key_type != CKK_EC && t->key_type != CKK_RSA) {
			snprintf(why, whylen, "the private key %s is neither EC nor RSA", key_name(t, kn, sizeof kn));
			goto out;
		}
	}
	t->ready = 1;
	rc = 0;
out:
	if (rc != 0)
		close_sessions(t);
	pthread_rwlock_unlock(&t->state);
	set_why(t, rc == 0 ? "" : why);
	if (rc == 0) {
		pthread_mutex_lock(&t->count_mu);
		t->connects++;
		pthread_mutex_unlock(&t->count_mu);
	}
	return rc;
}

void p11_disconnect(struct p11_token *t, const char *why)
{
	pthread_rwlock_wrlock(&t->state);
	close_sessions(t);
	pthread_rwlock_unlock(&t->state);
	set_why(t, why && *why ? why : "disconnected");
}

int p11_ready(struct p11_token *t, char *why, size_t whylen)
{
	int ready;

	pthread_rwlock_rdlock(&t->state);
	ready = t->ready;
	pthread_rwlock_unlock(&t->state);
	if (!ready) {
		pthread_mutex_lock(&t->why_mu);
		snprintf(why, whylen, "%s", *t->why ? t->why : "not connected");
		pthread_mutex_unlock(&t->why_mu);
	}
	return ready;
}

int p11_retry_due(struct p11_token *t)
{
	int due;

	pthread_rwlock_rdlock(&t->state);
	due = !t->ready && (!t->pin_refused || pin_changed(t));
	pthread_rwlock_unlock(&t->state);
	return due;
}

void p11_counters(struct p11_token *t, uint64_t *signatures, uint64_t *failures, uint64_t *connects)
{
	pthread_mutex_lock(&t->count_mu);
	*signatures = t->signatures;
	*failures = t->failures;
	*connects = t->connects;
	pthread_mutex_unlock(&t->count_mu);
}

int p11_sessions(const struct p11_token *t)
{
	return t->nsessions;
}

void p11_bind_thread(struct p11_token *t, int i)
{
	tl_token = i >= 0 ? t : NULL;
	tl_session = i;
}

/* ---- signing ---- */

static CK_MECHANISM_TYPE md_mech(int bits, CK_RSA_PKCS_MGF_TYPE *mgf)
{
	switch (bits) {
	case 256:
		*mgf = CKG_MGF1_SHA256;
		return CKM_SHA256;
	case 384:
		*mgf = CKG_MGF1_SHA384;
		return CKM_SHA384;
	case 512:
		*mgf = CKG_MGF1_SHA512;
		return CKM_SHA512;
	default:
		return CKM_VENDOR_DEFINED;
	}
}

static int sign_locked(struct p11_token *t, CK_SESSION_HANDLE s, enum p11_mech mech, int md_bits,
		       const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen, CK_RV *rvout, char *why,
		       size_t whylen)
{
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM m = {0};
	CK_ULONG len = *outlen;
	CK_RV rv;

	*rvout = CKR_OK;
	switch (mech) {
	case P11_ECDSA:
		m.mechanism = CKM_ECDSA;
		break;
	case P11_RSA_PKCS:
		m.mechanism = CKM_RSA_PKCS;
		break;
	case P11_RSA_RAW:
		m.mechanism = CKM_RSA_X_509;
		break;
	case P11_RSA_PSS:
		if ((pss.hashAlg = md_mech(md_bits, &pss.mgf)) == CKM_VENDOR_DEFINED || inlen * 8 != (size_t)md_bits) {
			snprintf(why, whylen, "RSA-PSS: a SHA-256, SHA-384 or SHA-512 digest only");
			return -1;
		}
		pss.sLen = inlen;
		m.mechanism = CKM_RSA_PKCS_PSS;
		m.pParameter = &pss;
		m.ulParameterLen = sizeof pss;
		break;
	default:
		snprintf(why, whylen, "unknown mechanism");
		return -1;
	}
	if ((mech == P11_ECDSA) != (t->key_type == CKK_EC)) {
		snprintf(why, whylen, "the token's key is of another type");
		return -1;
	}
	if ((rv = t->f->C_SignInit(s, &m, t->key)) != CKR_OK) {
		*rvout = rv;
		return fail_rv(why, whylen, "C_SignInit", rv);
	}
	/* out fits RSA-8192: never CKR_BUFFER_TOO_SMALL, which would leave the
	 * operation active */
	if ((rv = t->f->C_Sign(s, (CK_BYTE_PTR)in, inlen, out, &len)) != CKR_OK) {
		*rvout = rv;
		return fail_rv(why, whylen, "C_Sign", rv);
	}
	*outlen = len;
	return 0;
}

int p11_sign(struct p11_token *t, enum p11_mech mech, int md_bits, const uint8_t *in, size_t inlen, uint8_t *out,
	     size_t *outlen, char *why, size_t whylen)
{
	struct p11_session *s = NULL;
	CK_RV rv = CKR_OK;
	int rc = -1;

	if (*outlen < P11_SIG_MAX) {
		snprintf(why, whylen, "signature buffer too small");
		return -1;
	}
	pthread_rwlock_rdlock(&t->state);
	if (!t->ready || t->key == CK_INVALID_HANDLE) {
		pthread_rwlock_unlock(&t->state);
		pthread_mutex_lock(&t->why_mu);
		snprintf(why, whylen, "the token is not ready: %s", t->why);
		pthread_mutex_unlock(&t->why_mu);
		pthread_mutex_lock(&t->count_mu);
		t->failures++;
		pthread_mutex_unlock(&t->count_mu);
		return -1;
	}
	if (tl_token == t && tl_session >= 0 && tl_session < t->nsessions) {
		s = &t->s[tl_session];
		pthread_mutex_lock(&s->mu);
	} else {
		unsigned start = __atomic_fetch_add(&t->rr, 1, __ATOMIC_RELAXED);

		for (int i = 0; i < t->nsessions && !s; i++)
			if (pthread_mutex_trylock(&t->s[(start + i) % t->nsessions].mu) == 0)
				s = &t->s[(start + i) % t->nsessions];
		if (!s) {
			s = &t->s[start % t->nsessions];
			pthread_mutex_lock(&s->mu);
		}
	}
	rc = sign_locked(t, s->h, mech, md_bits, in, inlen, out, outlen, &rv, why, whylen);
	pthread_mutex_unlock(&s->mu);
	pthread_rwlock_unlock(&t->state);
	pthread_mutex_lock(&t->count_mu);
	if (rc == 0)
		t->signatures++;
	else
		t->failures++;
	pthread_mutex_unlock(&t->count_mu);
	if (rc != 0 && rv_fatal(rv)) {
		/* the token or our sessions are gone: not ready until a connect */
		pthread_rwlock_wrlock(&t->state);
		if (t->ready) {
			close_sessions(t);
			set_why(t, why);
		}
		pthread_rwlock_unlock(&t->state);
	}
	return rc;
}

int p11_key_type(struct p11_token *t)
{
	int type;

	pthread_rwlock_rdlock(&t->state);
	type = t->key == CK_INVALID_HANDLE ? 0 : t->key_type == CKK_EC ? P11_KEY_EC : P11_KEY_RSA;
	pthread_rwlock_unlock(&t->state);
	return type;
}

/* ---- the public key ---- */

int p11_public_key(struct p11_token *t, int *type, uint8_t *a1, size_t *l1, uint8_t *a2, size_t *l2, char *why,
		   size_t whylen)
{
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n;
	CK_KEY_TYPE kt;
	CK_RV rv;
	char kn[120];
	CK_ATTRIBUTE attrs[2] = {{CKA_KEY_TYPE, &kt, sizeof kt}};
	int rc = -1;

	pthread_rwlock_rdlock(&t->state);
	if (!t->ready) {
		snprintf(why, whylen, "the token is not connected");
		goto out;
	}
	pthread_mutex_lock(&t->s[0].mu);
	if (find_objects(t, t->s[0].h, CKO_PUBLIC_KEY, h, 2, &n, 1, 1, &rv) != 0) {
		fail_rv(why, whylen, "C_FindObjects", rv);
	} else if (n != 1) {
		snprintf(why, whylen, n ? "several public keys %s on the token" : "no public key %s on the token",
			 key_name(t, kn, sizeof kn));
	} else if ((rv = t->f->C_GetAttributeValue(t->s[0].h, h[0], attrs, 1)) != CKR_OK) {
		fail_rv(why, whylen, "C_GetAttributeValue", rv);
	} else if (kt != CKK_EC && kt != CKK_RSA) {
		snprintf(why, whylen, "the public key is neither EC nor RSA");
	} else {
		*type = kt == CKK_EC ? P11_KEY_EC : P11_KEY_RSA;
		attrs[0] = (CK_ATTRIBUTE){kt == CKK_EC ? CKA_EC_PARAMS : CKA_MODULUS, a1, *l1};
		attrs[1] = (CK_ATTRIBUTE){kt == CKK_EC ? CKA_EC_POINT : CKA_PUBLIC_EXPONENT, a2, *l2};
		if ((rv = t->f->C_GetAttributeValue(t->s[0].h, h[0], attrs, 2)) != CKR_OK) {
			fail_rv(why, whylen, "C_GetAttributeValue", rv);
		} else {
			*l1 = attrs[0].ulValueLen;
			*l2 = attrs[1].ulValueLen;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&t->s[0].mu);
out:
	pthread_rwlock_unlock(&t->state);
	return rc;
}

/* ---- making a key pair ---- */

int p11_generate(struct p11_token *t, const char *alg, char *why, size_t whylen)
{
	static const uint8_t p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	static const uint8_t p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
	static const uint8_t f4[] = {0x01, 0x00, 0x01};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = 0, n;
	CK_MECHANISM m = {0};
	CK_OBJECT_HANDLE pub, priv, h[1];
	CK_ATTRIBUTE pt[10], kt[12];
	CK_ULONG npt = 0, nkt = 0;
	uint8_t id[ID_MAX];
	size_t idlen;
	CK_RV rv;
	int rc = -1;

	if (!strcmp(alg, "ecdsa-p256") || !strcmp(alg, "ecdsa-p384")) {
		int p = !strcmp(alg, "ecdsa-p256");

		m.mechanism = CKM_EC_KEY_PAIR_GEN;
		pt[npt++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)(p ? p256 : p384), p ? sizeof p256 : sizeof p384};
	} else if (!strcmp(alg, "rsa-2048") || !strcmp(alg, "rsa-3072") || !strcmp(alg, "rsa-4096")) {
		bits = (CK_ULONG)atol(alg + 4);
		m.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		pt[npt++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof bits};
		pt[npt++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, (void *)f4, sizeof f4};
	} else {
		snprintf(why, whylen, "a key on a token is ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096");
		return -1;
	}
	/* without a configured id: a random one, so the pair's halves find each other */
	if (t->key_id_len) {
		memcpy(id, t->key_id, t->key_id_len);
		idlen = t->key_id_len;
	} else {
		idlen = 16;
		if (getrandom(id, idlen, 0) != (ssize_t)idlen) {
			snprintf(why, whylen, "getrandom: %s", strerror(errno));
			return -1;
		}
	}
	pt[npt++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof yes};
	pt[npt++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof yes};
	pt[npt++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &no, sizeof no};
	pt[npt++] = (CK_ATTRIBUTE){CKA_WRAP, &no, sizeof no};
	pt[npt++] = (CK_ATTRIBUTE){CKA_ID, id, idlen};
	if (*t->key_label)
		pt[npt++] = (CK_ATTRIBUTE){CKA_LABEL, t->key_label, strlen(t->key_label)};
	kt[nkt++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof yes};
	kt[nkt++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof yes};
	kt[nkt++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof yes};
	kt[nkt++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof no};
	kt[nkt++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof yes};
	/* signing only: a module's defaults may allow more */
	kt[nkt++] = (CK_ATTRIBUTE){CKA_DECRYPT, &no, sizeof no};
	kt[nkt++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof no};
	kt[nkt++] = (CK_ATTRIBUTE){CKA_DERIVE, &no, sizeof no};
	kt[nkt++] = (CK_ATTRIBUTE){CKA_ID, id, idlen};
	if (*t->key_label)
		kt[nkt++] = (CK_ATTRIBUTE){CKA_LABEL, t->key_label, strlen(t->key_label)};

	pthread_rwlock_wrlock(&t->state);
	if (!t->ready) {
		snprintf(why, whylen, "the token is not connected");
		goto out;
	}
	/* never a second key under the same name: which one would sign? */
	if (find_objects(t, t->s[0].h, CKO_PRIVATE_KEY, h, 1, &n, 1, 0, &rv) != 0 ||
	    (n == 0 && t->key_id_len && find_objects(t, t->s[0].h, CKO_PRIVATE_KEY, h, 1, &n, 0, 1, &rv) != 0)) {
		fail_rv(why, whylen, "C_FindObjects", rv);
		goto out;
	}
	if (n) {
		snprintf(why, whylen, "the token already holds a private key with this label or id");
		goto out;
	}
	rv = t->f->C_GenerateKeyPair(t->s[0].h, &m, pt, npt, kt, nkt, &pub, &priv);
	if (rv != CKR_OK) {
		fail_rv(why, whylen, "C_GenerateKeyPair", rv);
		goto out;
	}
	t->key = priv;
	t->key_type = m.mechanism == CKM_EC_KEY_PAIR_GEN ? CKK_EC : CKK_RSA;
	if (!t->key_id_len) {
		memcpy(t->key_id, id, idlen);
		t->key_id_len = idlen;
	}
	rc = 0;
out:
	pthread_rwlock_unlock(&t->state);
	return rc;
}
