/*
 * httpc.h -- a small blocking HTTP/1.1 client for talking to a Nearly (or
 * Qdrant) server on one keep-alive connection: `nearly import --url` and
 * `nearly export --url`.  Plain http only.
 */
#ifndef NY_CLI_HTTPC_H
#define NY_CLI_HTTPC_H

#include <stddef.h>

typedef struct httpc {
    char host[300];
    char port[8];
    char prefix[256];   /* path prefix from the URL, without a trailing '/' */
    const char *api_key;
    int fd;
    char *buf;          /* response buffer */
    size_t cap, len;
    double timeout;     /* seconds per request */
} httpc;

/* Parses "http://host[:port][/prefix]".  NY_EINVAL on a bad URL. */
int httpc_init(httpc *h, const char *url, const char *api_key);
/* Sends method path (appended to the prefix) with an optional JSON body and
 * reads the response.  *status gets the HTTP status, *resp the body (owned
 * by h, valid until the next call, NUL-terminated).  A failed connection is
 * re-opened once.  Returns NY_OK or NY_EIO with a message. */
int httpc_request(httpc *h, const char *method, const char *path, const char *body, size_t blen, int *status,
                  const char **resp, size_t *resp_len);
void httpc_close(httpc *h);

#endif
