/* Agents' enrolment, identities and work routes (agents.c, docs/agent.md). */
#ifndef CERTWARD_API_AGENTS_H
#define CERTWARD_API_AGENTS_H

/* Adds their routes to the route table. */
void agents_routes_init(void);

#endif
