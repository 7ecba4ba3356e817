/*
 * chat.h - `stampctl chat`, the operator console's client (chat.c).
 */
#ifndef STAMPD_CHAT_H
#define STAMPD_CHAT_H

#include "addr.h"

/* Attach to the chat channel of the admin port at `admin` (presenting
 * `token` when not NULL or ""), then relay lines until stdin ends or the
 * server closes.  Exit status: 0 when the operator ended the session, 1
 * when the attach was refused or the server closed it. */
int chat_run(const struct addr *admin, const char *token, double timeout_s);

#endif
