/* HTTP over the api's TLS connections: routing and the built-in endpoints. */
#ifndef CERTWARD_API_HTTP_H
#define CERTWARD_API_HTTP_H

#include "config.h"
#include "tls_server.h"
#include "util.h"
#include "worker.h"

struct http_service;

struct http_service *http_service_new(struct worker *w, const struct cfg *section);
void http_service_free(struct http_service *h);
void http_service_metrics(const struct http_service *h, struct strbuf *out);
const struct tls_app *http_tls_app(void);

#endif
