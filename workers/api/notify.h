/* The api's side of notifications (notify.c, docs/api.md "Notification
 * channels and rules"): channels created, changed and deleted with their
 * secrets sealed to certward-notifier's key, requeueing a dead delivery,
 * and the digest's preview and send. */
#ifndef CERTWARD_API_NOTIFY_H
#define CERTWARD_API_NOTIFY_H

/* Adds their routes to the route table. */
void notify_routes_init(void);

#endif
