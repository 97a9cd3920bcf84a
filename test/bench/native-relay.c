// The floor for any relay process on this machine: a native TCP relay, one epoll thread, no
// reading of what passes. tap-bench.js measures it beside xray-tap and the bare Node relay, so
// what a third process costs on these cores is seen apart from what Node and the tap cost.
// Usage: native-relay UPSTREAM_PORT; prints "relaying 127.0.0.1:PORT" once listening.
// Built by tap-bench.js with the system's cc; skipped where there is none.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 65536

// For each descriptor, the one it relays to (-1: none).
static int peer[MAX_FD];

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void drop(int epoll, int fd) {
  int other = peer[fd];
  epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  peer[fd] = -1;
  if (other >= 0) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, other, NULL);
    close(other);
    peer[other] = -1;
  }
}

// Writes all of it: the bench's messages are small, so a blocking write never waits long.
static int write_all(int fd, const char *data, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += w;
    n -= w;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: native-relay UPSTREAM_PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < MAX_FD; i++) peer[i] = -1;
  struct sockaddr_in upstream = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &upstream.sin_addr);
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in here = {.sin_family = AF_INET, .sin_port = 0};
  inet_pton(AF_INET, "127.0.0.1", &here.sin_addr);
  socklen_t size = sizeof here;
  if (bind(listener, (struct sockaddr *)&here, sizeof here) < 0 || listen(listener, 1024) < 0 ||
      getsockname(listener, (struct sockaddr *)&here, &size) < 0) {
    perror("native-relay");
    return 1;
  }
  printf("relaying 127.0.0.1:%d\n", ntohs(here.sin_port));
  fflush(stdout);
  int epoll = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
  static char buffer[65536];
  struct epoll_event ready[256];
  for (;;) {
    int n = epoll_wait(epoll, ready, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) continue;
        int server = socket(AF_INET, SOCK_STREAM, 0);
        if (server < 0 || client >= MAX_FD || server >= MAX_FD ||
            connect(server, (struct sockaddr *)&upstream, sizeof upstream) < 0) {
          close(client);
          if (server >= 0) close(server);
          continue;
        }
        nodelay(client);
        nodelay(server);
        peer[client] = server;
        peer[server] = client;
        struct epoll_event a = {.events = EPOLLIN, .data.fd = client};
        struct epoll_event b = {.events = EPOLLIN, .data.fd = server};
        epoll_ctl(epoll, EPOLL_CTL_ADD, client, &a);
        epoll_ctl(epoll, EPOLL_CTL_ADD, server, &b);
        continue;
      }
      if (peer[fd] < 0) continue;
      // Without waiting: an event left from a descriptor closed earlier in this batch may name a
      // new connection that reused its number and has nothing to read yet.
      ssize_t got = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (got <= 0 || write_all(peer[fd], buffer, got) < 0) drop(epoll, fd);
    }
  }
}
