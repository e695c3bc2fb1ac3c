/* certward-api: the network-facing front end. It holds no private key and no
 * database credentials; it reaches the store, the signer and the scheduler
 * only through its IPC channels. TLS handshake signatures are made by the
 * signer (tls_server.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "build_config.h"
#include "codec.h"
#include "auth.h"
#include "harden.h"
#include "http.h"
#include "log.h"
#include "revocation.h"
#include "routes.h"
#include "tls_server.h"
#include "worker.h"

struct api {
	struct tls_server *tls;
	struct tls_server *plain; /* optional plain-HTTP listener */
	struct http_service *http;
};

static struct api api;

static int api_init(struct worker *w, const struct cfg *section)
{
	auth_configure(section);
	revocation_configure(section);
	audit_configure(w, section);
	routes_init();
	auth_start(w);
	revocation_start(w);
	api.http = http_service_new(w, section);
	if (!api.http)
		return -1;
	api.tls = tls_server_new(w, section, http_tls_app(), 0);
	if (!api.tls)
		return -1;
	if (*cfg_str(section, "api", "plain_listen")) {
		api.plain = tls_server_new(w, section, http_tls_app(), 1);
		if (!api.plain)
			return -1;
		tls_server_start(api.plain);
	}
	/* the certificate arrives from the signer once the loop runs */
	tls_server_start(api.tls);
	return 0;
}

static void api_metrics(struct worker *w, struct strbuf *out)
{
	if (api.tls)
		tls_server_metrics(api.tls, out);
	if (api.plain)
		tls_server_metrics(api.plain, out);
	if (api.http)
		http_service_metrics(api.http, out);
}

static void api_stop(struct worker *w)
{
	auth_stop();
	revocation_stop();
	if (api.tls)
		tls_server_stop(api.tls);
	if (api.plain)
		tls_server_stop(api.plain);
	api.tls = api.plain = NULL;
	http_service_free(api.http);
	api.http = NULL;
}

static const struct worker_ops ops = {
	.role = IPC_ROLE_API,
	.summary = "certward-api: HTTPS front end of certward (REST API and protocol endpoints).",
	.harden = HARDEN_NET_ACCEPT,
	.init = api_init,
	.metrics = api_metrics,
	.stop = api_stop,
#if CERTWARD_TEST_HOOKS
	.test_hook = audit_test_hook,
#endif
};

int main(int argc, char **argv)
{
	/* the route table, for operators and for the test that holds it
	 * against schema/openapi.yaml */
	if (argc == 2 && strcmp(argv[1], "--list-routes") == 0) {
		routes_print(stdout);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	return worker_main(argc, argv, &ops);
}
