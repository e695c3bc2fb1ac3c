/* The ACME HTTP-01 responder: GET /.well-known/acme-challenge/{token}
 * (acme_http.c, RFC 8555 section 8.3). */
#ifndef CERTWARD_API_ACME_HTTP_H
#define CERTWARD_API_ACME_HTTP_H

/* Adds its route to the route table. */
void acme_http_routes_init(void);

#endif
