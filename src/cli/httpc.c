/* httpc.c -- minimal blocking HTTP/1.1 client (see httpc.h). */
#include "cli/httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/common.h"

int httpc_init(httpc *h, const char *url, const char *api_key)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    h->api_key = api_key;
    h->timeout = 600;
    if (strncmp(url, "http://", 7) != 0)
        return ny_error(NY_EINVAL, "URL '%s' must start with http:// (https is not supported)", url);
    const char *p = url + 7, *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    char hostport[256];
    if (hl == 0 || hl >= sizeof hostport) return ny_error(NY_EINVAL, "URL '%s': bad host", url);
    memcpy(hostport, p, hl);
    hostport[hl] = 0;
    char *colon = strrchr(hostport, ':');
    if (hostport[0] == '[') { /* [ipv6]:port */
        char *rb = strchr(hostport, ']');
        if (!rb) return ny_error(NY_EINVAL, "URL '%s': bad IPv6 host", url);
        *rb = 0;
        snprintf(h->host, sizeof h->host, "%s", hostport + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        if (colon) *colon = 0;
        snprintf(h->host, sizeof h->host, "%s", hostport);
    }
    if (colon) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (*e || port <= 0 || port > 65535) return ny_error(NY_EINVAL, "URL '%s': bad port", url);
        snprintf(h->port, sizeof h->port, "%ld", port);
    } else {
        snprintf(h->port, sizeof h->port, "80");
    }
    if (slash) {
        snprintf(h->prefix, sizeof h->prefix, "%s", slash);
        size_t l = strlen(h->prefix);
        while (l > 0 && h->prefix[l - 1] == '/') h->prefix[--l] = 0;
    }
    return NY_OK;
}

void httpc_close(httpc *h)
{
    if (h->fd >= 0) close(h->fd);
    h->fd = -1;
    free(h->buf);
    h->buf = NULL;
    h->cap = h->len = 0;
}

static int do_connect(httpc *h)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(h->host, h->port, &hints, &res);
    if (g != 0) return ny_error(NY_EIO, "cannot resolve %s: %s", h->host, gai_strerror(g));
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err;
        return ny_error_errno(NY_EIO, "cannot connect to %s:%s", h->host, h->port);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {(time_t)h->timeout, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    h->fd = fd;
    return NY_OK;
}

static int send_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)n;
        ssize_t k = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

/* Reads more into h->buf; returns bytes read, 0 on EOF, -1 on error. */
static ssize_t more(httpc *h)
{
    if (h->len + 65536 + 1 > h->cap) {
        size_t c = h->cap ? h->cap * 2 : 131072;
        while (c < h->len + 65536 + 1) c *= 2;
        char *b = realloc(h->buf, c);
        if (!b) return -1;
        h->buf = b;
        h->cap = c;
    }
    for (;;) {
        ssize_t k = recv(h->fd, h->buf + h->len, h->cap - h->len - 1, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k > 0) h->len += (size_t)k;
        return k;
    }
}

static const char *find_header(const char *hdr, const char *hend, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = hdr; p < hend;) {
        const char *eol = memchr(p, '\n', (size_t)(hend - p));
        if (!eol) eol = hend;
        if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ') p++;
            return p;
        }
        p = eol + 1;
    }
    return NULL;
}

/* One attempt.  *sent_ok tells whether a response byte arrived (a failure
 * before that on a reused connection is retried). */
static int attempt(httpc *h, const char *method, const char *path, const char *body, size_t blen, int *status,
                   size_t *body_off, size_t *body_len, int *got_any)
{
    *got_any = 0;
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "%s %s%s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: nearly/" NEARLY_VERSION
                      "\r\nAccept: application/json\r\n%s%s%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      method, h->prefix, path, h->host, h->port, h->api_key ? "api-key: " : "",
                      h->api_key ? h->api_key : "", h->api_key ? "\r\n" : "", body ? blen : 0);
    if (hn < 0 || hn >= (int)sizeof head) return ny_error(NY_EINVAL, "request path too long");
    struct iovec iov[2] = {{head, (size_t)hn}, {(void *)body, body ? blen : 0}};
    if (send_all(h->fd, iov, body && blen ? 2 : 1) != 0)
        return ny_error_errno(NY_EIO, "sending to %s:%s", h->host, h->port);
    h->len = 0;
    char *hend = NULL;
    for (;;) {
        if (h->len) {
            h->buf[h->len] = 0;
            hend = strstr(h->buf, "\r\n\r\n");
            if (hend) break;
        }
        ssize_t k = more(h);
        if (k <= 0) {
            if (k == 0) return ny_error(NY_EIO, "%s:%s closed the connection", h->host, h->port);
            return ny_error_errno(NY_EIO, "reading from %s:%s", h->host, h->port);
        }
        *got_any = 1;
    }
    int major, minor, st;
    if (sscanf(h->buf, "HTTP/%d.%d %d", &major, &minor, &st) != 3)
        return ny_error(NY_EIO, "%s:%s: malformed HTTP response", h->host, h->port);
    *status = st;
    size_t hsz = (size_t)(hend - h->buf) + 4;
    const char *cl = find_header(h->buf, hend, "Content-Length");
    const char *te = find_header(h->buf, hend, "Transfer-Encoding");
    const char *cn = find_header(h->buf, hend, "Connection");
    int close_after = cn && !strncasecmp(cn, "close", 5);
    if (te && !strncasecmp(te, "chunked", 7)) {
        /* decode chunks in place, after the header */
        size_t rd = hsz, w = hsz;
        for (;;) {
            char *eol;
            while (!(eol = memchr(h->buf + rd, '\n', h->len - rd))) {
                ssize_t k = more(h);
                if (k <= 0) return ny_error(NY_EIO, "%s:%s: truncated chunked response", h->host, h->port);
            }
            size_t sz = strtoul(h->buf + rd, NULL, 16);
            rd = (size_t)(eol - h->buf) + 1;
            while (h->len - rd < sz + 2) {
                ssize_t k = more(h);
                if (k <= 0) return ny_error(NY_EIO, "%s:%s: truncated chunked response", h->host, h->port);
            }
            if (sz == 0) {
                /* skip trailers up to the blank line */
                for (;;) {
                    while (!(eol = memchr(h->buf + rd, '\n', h->len - rd))) {
                        ssize_t k = more(h);
                        if (k <= 0) return ny_error(NY_EIO, "%s:%s: truncated chunked response", h->host, h->port);
                    }
                    size_t ll = (size_t)(eol - (h->buf + rd));
                    rd = (size_t)(eol - h->buf) + 1;
                    if (ll <= 1) break;
                }
                break;
            }
            memmove(h->buf + w, h->buf + rd, sz);
            w += sz;
            rd += sz + 2;
        }
        *body_off = hsz;
        *body_len = w - hsz;
    } else if (cl) {
        size_t want = strtoull(cl, NULL, 10);
        while (h->len - hsz < want) {
            ssize_t k = more(h);
            if (k <= 0) return ny_error(NY_EIO, "%s:%s: truncated response", h->host, h->port);
        }
        *body_off = hsz;
        *body_len = want;
    } else {
        while (more(h) > 0) {}
        close_after = 1;
        *body_off = hsz;
        *body_len = h->len - hsz;
    }
    h->buf[*body_off + *body_len] = 0;
    if (close_after) {
        close(h->fd);
        h->fd = -1;
    }
    return NY_OK;
}

int httpc_request(httpc *h, const char *method, const char *path, const char *body, size_t blen, int *status,
                  const char **resp, size_t *resp_len)
{
    for (int tries = 0;; tries++) {
        int reused = h->fd >= 0;
        if (!reused) {
            int rc = do_connect(h);
            if (rc != NY_OK) return rc;
        }
        size_t off = 0, len = 0;
        int got_any = 0;
        int rc = attempt(h, method, path, body, blen, status, &off, &len, &got_any);
        if (rc == NY_OK) {
            *resp = h->buf + off;
            if (resp_len) *resp_len = len;
            return NY_OK;
        }
        if (h->fd >= 0) close(h->fd);
        h->fd = -1;
        if (!(reused && !got_any && tries == 0)) return rc; /* a stale keep-alive connection is retried once */
    }
}
