/* A custom runtime in C: the Runtime API over one keep-alive connection, no libraries.
   Answers each event with {"c": <event>, "arn": "<invoked ARN>"}. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[1 << 22];

static int api_connect(void) {
    char host[64];
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    const char *colon = strchr(api, ':');
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
    snprintf(host, sizeof host, "%.*s", (int)(colon - api), api);
    inet_pton(AF_INET, host, &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("connect"); exit(2); }
    return fd;
}

static void send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n <= 0) { perror("write"); exit(3); }
        data += n; len -= (size_t)n;
    }
}

/* Reads one response; returns the body length, copies two headers when asked. */
static size_t read_response(int fd, char *request_id, char *arn) {
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        ssize_t n = read(fd, buf + have, sizeof buf - have - 1);
        if (n <= 0) { fprintf(stderr, "connection closed\n"); exit(4); }
        have += (size_t)n; buf[have] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head = (size_t)(end - buf) + 4, length = 0;
    for (char *line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        char *value = strchr(line, ':') + 1;
        while (*value == ' ') value++;
        size_t vlen = strcspn(value, "\r");
        if (!strncasecmp(line, "Content-Length:", 15)) length = strtoul(value, NULL, 10);
        if (request_id && !strncasecmp(line, "Lambda-Runtime-Aws-Request-Id:", 30))
            snprintf(request_id, 128, "%.*s", (int)vlen, value);
        if (arn && !strncasecmp(line, "Lambda-Runtime-Invoked-Function-Arn:", 36))
            snprintf(arn, 256, "%.*s", (int)vlen, value);
    }
    while (have < head + length) {
        ssize_t n = read(fd, buf + have, sizeof buf - have - 1);
        if (n <= 0) exit(5);
        have += (size_t)n;
    }
    memmove(buf, buf + head, length);
    buf[length] = 0;
    return length;
}

int main(void) {
    static char event[1 << 21], head[512], out[(1 << 21) + 512];
    char request_id[128], arn[256];
    int fd = api_connect();
    printf("c bootstrap ready\n");
    fflush(stdout);
    for (;;) {
        const char *next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\n\r\n";
        send_all(fd, next, strlen(next));
        size_t len = read_response(fd, request_id, arn);
        memcpy(event, buf, len + 1);
        int body = snprintf(out, sizeof out, "{\"c\": %s, \"arn\": \"%s\"}", event, arn);
        int n = snprintf(head, sizeof head,
                         "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\n"
                         "Host: api\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
                         request_id, body);
        send_all(fd, head, (size_t)n);
        send_all(fd, out, (size_t)body);
        read_response(fd, NULL, NULL);
    }
}
