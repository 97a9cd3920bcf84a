// Interop peer: an ExternalAuthService on the official Cap'n Proto C++ library (EzRpcServer).
//
//   server PATH            listens on the Unix socket PATH (a stale socket file is removed first)
//
// Prints "listening" on stdout once the socket is bound. The decision depends on the request, so
// tests can steer it (first rule that applies wins):
//   x-exit: 1               the process exits at once, without replying (server killed mid-call)
//   x-throw: 1              the call fails: KJ_FAIL_REQUIRE("x-throw requested")
//   x-delay-ms: N           the reply (by the rules below) comes after N ms (kj timer); such a call
//                           may be cancelled by Finish, and then prints "cancelled <N>" on stdout
//                           (a completed one prints "delayed <N>")
//   x-echo: 1               pass, upstreamValue = the request as one line of JSON:
//                           {"method","host","path","query","clientIp","headerCount",
//                            "headers":[[name,value],...],"nullFields":[...]}
//   x-action: pass|block|redirect   exactly this decision, with x-status (statusCode, default 0),
//                           x-upstream-value, x-location, x-body (the other fields, default "")
//   path starting /redirect redirect 302 to https://login.example/
//   no authorization header block 401
//   authorization: Bearer good   pass, upstreamValue "user=alice"
//   any other authorization block 403
//
// Built twice by peers.ts: against external_auth.capnp, and with -DWRONG_ID against
// external_auth_wrong_id.capnp (another file ID, so another interface ID).

#ifdef WRONG_ID
#include "external_auth_wrong_id.capnp.h"
#else
#include "external_auth.capnp.h"
#endif
#include <capnp/ez-rpc.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

using Request = AuthRequest::Reader;

static kj::Maybe<kj::StringPtr> header(Request request, kj::StringPtr name) {
  for (auto h: request.getHeaders()) {
    if (h.getName() == name) return kj::StringPtr(h.getValue());
  }
  return nullptr;
}

static kj::String json(kj::StringPtr s) {
  kj::Vector<char> out(s.size() + 2);
  out.add('"');
  for (char c: s) {
    if (c == '"' || c == '\\') { out.add('\\'); out.add(c); }
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
      out.addAll(kj::StringPtr(buf));
    } else out.add(c);
  }
  out.add('"');
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

static kj::String echo(Request r) {
  kj::Vector<kj::String> headers(r.getHeaders().size());
  for (auto h: r.getHeaders()) headers.add(kj::str("[", json(h.getName()), ",", json(h.getValue()), "]"));
  kj::Vector<kj::StringPtr> nulls;
  if (!r.hasMethod()) nulls.add("\"method\"");
  if (!r.hasHost()) nulls.add("\"host\"");
  if (!r.hasPath()) nulls.add("\"path\"");
  if (!r.hasQuery()) nulls.add("\"query\"");
  if (!r.hasClientIp()) nulls.add("\"clientIp\"");
  if (!r.hasHeaders()) nulls.add("\"headers\"");
  return kj::str("{\"method\":", json(r.getMethod()), ",\"host\":", json(r.getHost()),
                 ",\"path\":", json(r.getPath()), ",\"query\":", json(r.getQuery()),
                 ",\"clientIp\":", json(r.getClientIp()), ",\"headerCount\":", r.getHeaders().size(),
                 ",\"headers\":[", kj::strArray(headers, ","), "],\"nullFields\":[",
                 kj::strArray(nulls, ","), "]}");
}

static void decide(Request r, AuthDecision::Builder d) {
  KJ_IF_MAYBE(v, header(r, "x-echo")) {
    if (*v == "1") { d.setAction(DecisionAction::PASS); d.setUpstreamValue(echo(r)); return; }
  }
  KJ_IF_MAYBE(action, header(r, "x-action")) {
    if (*action == "pass") d.setAction(DecisionAction::PASS);
    else if (*action == "block") d.setAction(DecisionAction::BLOCK);
    else if (*action == "redirect") d.setAction(DecisionAction::REDIRECT);
    else KJ_FAIL_REQUIRE("unknown x-action", *action);
    KJ_IF_MAYBE(v, header(r, "x-status")) d.setStatusCode(atoi(v->cStr()));
    KJ_IF_MAYBE(v, header(r, "x-upstream-value")) d.setUpstreamValue(*v);
    KJ_IF_MAYBE(v, header(r, "x-location")) d.setRedirectLocation(*v);
    KJ_IF_MAYBE(v, header(r, "x-body")) d.setResponseBody(*v);
    return;
  }
  if (r.getPath().startsWith("/redirect")) {
    d.setAction(DecisionAction::REDIRECT);
    d.setStatusCode(302);
    d.setRedirectLocation("https://login.example/");
    return;
  }
  KJ_IF_MAYBE(auth, header(r, "authorization")) {
    if (*auth == "Bearer good") {
      d.setAction(DecisionAction::PASS);
      d.setUpstreamValue("user=alice");
    } else {
      d.setAction(DecisionAction::BLOCK);
      d.setStatusCode(403);
    }
  } else {
    d.setAction(DecisionAction::BLOCK);
    d.setStatusCode(401);
  }
}

static void event(kj::StringPtr what, unsigned ms) {
  printf("%s %u\n", what.cStr(), ms);
  fflush(stdout);
}

// Lives as long as a delayed call's promise: if that promise is dropped before it completed,
// the call was cancelled (by a Finish before Return, or by the connection closing).
struct CancelWatch {
  unsigned ms;
  bool done = false;
  explicit CancelWatch(unsigned ms): ms(ms) {}
  ~CancelWatch() { if (!done) event("cancelled", ms); }
};

class AuthService final: public ExternalAuthService::Server {
public:
  kj::Timer* timer = nullptr;  // set in main once the event loop exists

  kj::Promise<void> check(CheckContext context) override {
    auto r = context.getParams().getRequest();
    KJ_IF_MAYBE(v, header(r, "x-exit")) {
      if (*v == "1") _exit(0);
    }
    KJ_IF_MAYBE(v, header(r, "x-throw")) {
      if (*v == "1") KJ_FAIL_REQUIRE("x-throw requested");
    }
    KJ_IF_MAYBE(v, header(r, "x-delay-ms")) {
      unsigned ms = atoi(v->cStr());
      context.allowCancellation();
      auto watch = kj::heap<CancelWatch>(ms);
      auto& done = watch->done;
      return timer->afterDelay(ms * kj::MILLISECONDS)
          .then([context, ms, &done]() mutable {
            done = true;
            event("delayed", ms);
            decide(context.getParams().getRequest(), context.getResults().initDecision());
          })
          .attach(kj::mv(watch));
    }
    decide(r, context.getResults().initDecision());
    return kj::READY_NOW;
  }
};

int main(int argc, char* argv[]) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
    return 2;
  }
  kj::StringPtr path = argv[1];
  if (path.startsWith("unix:")) path = path.slice(5);
  struct stat st;
  if (lstat(path.cStr(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.cStr());

  auto service = kj::heap<AuthService>();
  auto& impl = *service;
  capnp::EzRpcServer server(kj::mv(service), kj::str("unix:", path));
  impl.timer = &server.getIoProvider().getTimer();
  server.getPort().wait(server.getWaitScope());  // resolves once the socket is bound
  printf("listening\n");
  fflush(stdout);
  kj::NEVER_DONE.wait(server.getWaitScope());
}
