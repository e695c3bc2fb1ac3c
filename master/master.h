/* certwardd internals: shared by main.c, supervisor.c, logs.c and control.c. */
#ifndef CERTWARD_MASTER_H
#define CERTWARD_MASTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "backoff.h"
#include "channel.h"
#include "config.h"

enum slot_state {
	SLOT_STOPPED,
	SLOT_STARTING, /* spawned, not READY yet */
	SLOT_RUNNING,
	SLOT_BACKOFF,  /* exited, restart timer armed */
	SLOT_STOPPING, /* asked to stop */
};

struct slot {
	char name[32];       /* "store", "api", "api.1" */
	unsigned role;
	unsigned instance;
	enum slot_state state;
	uv_process_t proc;
	bool proc_active;
	pid_t pid;
	struct ipc_channel *control;
	struct backoff backoff;
	unsigned restarts;
	bool crashlooping;
	uint64_t started_ms;
	char last_exit[64];
	uv_timer_t timer;    /* restart delay, or stop deadline */
	char *section;       /* serialized configuration section last sent */
	size_t section_len;
	bool restart_now;    /* restart as soon as it exits (ctl restart, reload) */
	bool retired;        /* removed by a reload (fewer api processes) */
	unsigned generation; /* bumped at each start: tells one process of the slot from the next */
};

#define MAX_SLOTS 72

struct master {
	uv_loop_t *loop;
	const char *config_path;
	struct cfg *cfg;
	bool foreground;
	bool as_root;
	uid_t uid, signer_uid;
	gid_t gid, signer_gid;
	char libexec[1024];
	struct slot slots[MAX_SLOTS];
	size_t nslots;
	bool shutting_down;
	int shutdown_phase;
	uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
	uv_pipe_t control_server;
	bool control_open;
	int exit_code;
};

extern struct master M;

/* supervisor.c */
int supervisor_start(void);
void supervisor_shutdown(void);
int supervisor_reload(char *msg, size_t msglen);
struct slot *slot_by_name(const char *name);
int slot_restart(struct slot *s);
const char *slot_state_name(const struct slot *s);
char *section_for(const struct cfg *cfg, unsigned role, size_t *len);
/* signer.key_dir or signer.cert_dir as configured, else their place in state_dir */
void signer_dir(const struct cfg *cfg, const char *key, char *out, size_t outlen);

/* logs.c */
int logs_open(const char *dir);
void logs_reopen(void);
void logs_close(void);
/* Starts reading a worker's stderr from fd (the read end of its pipe). */
void logs_attach(const struct slot *s, int fd);
void logs_master_sink(const char *line, size_t len);

/* metrics.c: answers to the api's WORKERS_GET and METRICS_ALL_GET */
void metrics_gather(struct slot *asker, const struct ipc_msg *req);
void workers_report(struct ipc_channel *reply_to, const struct ipc_msg *req);

/* bootstrap.c: the first admin API key, once the store is ready */
void bootstrap_store_ready(void);
void bootstrap_stop(void);

/* control.c */
int control_open(const char *path, char *err, size_t errlen);
void control_close(void);

#endif
