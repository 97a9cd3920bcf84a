// Interop peer: an ExternalAuthService client on the official Cap'n Proto C++ library (EzRpcClient).
//
//   client SOCKET [options]          SOCKET is a path, with or without "unix:"
//     --calls N          calls to make (default 1)
//     --in-flight K      calls outstanding at once on the one connection (default 1)
//     --headers H        headers per request (default 4): the first H of
//                          authorization: Bearer good, user-agent: curl/8.5.0, accept: */*,
//                          x-request-id: req-<call number>
//                        then filler headers x-fill-<i> whose value is --value-size letters
//     --value-size B     length of each filler value (default 16)
//     --header 'N: V'    (repeatable) replaces the default header named N, or is appended
//     --method M --host H --path P --query Q --client-ip A
//                        request fields (default GET, example.com, /, "", 203.0.113.5:40000)
//     --timeout-ms T     a call not answered within T ms is cancelled (Finish) and fails
//     --print            print each decision as one JSON line, in completion order:
//                          {"action","statusCode","upstreamValue","redirectLocation","responseBody"}
//     --bench S          make calls for S seconds instead of --calls
// Finally prints {"calls":N,"seconds":S,"callsPerSec":R,"cpuSeconds":C}, C the process's CPU
// time (user + system) over those S seconds, for the bench's CPU per call. If a call fails it prints
// "call failed: <exception description>" on stderr and exits 1 (2 on usage errors).
//
// Built twice by peers.ts, like server.c++: the second time with -DWRONG_ID against
// external_auth_wrong_id.capnp, so its calls carry another interface ID.

#ifdef WRONG_ID
#include "external_auth_wrong_id.capnp.h"
#else
#include "external_auth.capnp.h"
#endif
#include <capnp/ez-rpc.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct NameValue {
  kj::String name;
  kj::String value;
};

struct Options {
  kj::StringPtr socket;
  uint64_t calls = 1;
  unsigned inFlight = 1;
  unsigned headers = 4;
  unsigned valueSize = 16;
  kj::Vector<NameValue> extra;  // from --header
  kj::StringPtr method = "GET", host = "example.com", path = "/", query = "", clientIp = "203.0.113.5:40000";
  unsigned timeoutMs = 0;
  bool print = false;
  double benchSeconds = 0;
};

static kj::String json(kj::StringPtr s) {
  kj::Vector<char> out(s.size() + 3);
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

[[noreturn]] static void fail(kj::StringPtr message) {
  fflush(stdout);
  fprintf(stderr, "call failed: %s\n", message.cStr());
  exit(1);
}

class Run {
public:
  Run(const Options& o, ExternalAuthService::Client cap, kj::Timer& timer)
      : o(o), cap(kj::mv(cap)), timer(timer) {
    filler = kj::heapString(o.valueSize);
    for (unsigned i = 0; i < o.valueSize; i++) filler[i] = 'a' + i % 26;
    deadline = kj::systemPreciseMonotonicClock().now() +
               static_cast<int64_t>(o.benchSeconds * 1e9) * kj::NANOSECONDS;
  }

  kj::Promise<void> lane() {
    if (error != nullptr) return kj::READY_NOW;
    bool more = o.benchSeconds > 0 ? kj::systemPreciseMonotonicClock().now() < deadline
                                   : started < o.calls;
    if (!more) return kj::READY_NOW;
    auto request = cap.checkRequest();
    fill(request.initRequest(), ++started);
    auto reply = request.send();
    kj::Promise<capnp::Response<ExternalAuthService::CheckResults>> answer = kj::mv(reply);
    if (o.timeoutMs > 0) answer = timer.timeoutAfter(o.timeoutMs * kj::MILLISECONDS, kj::mv(answer));
    return answer.then(
        [this](capnp::Response<ExternalAuthService::CheckResults> response) {
          ++completed;
          if (o.print) print(response.getDecision());
          return lane();
        },
        [this](kj::Exception&& e) {
          // Stop this lane; the others stop before their next call.
          if (error == nullptr) error = kj::mv(e);
        });
  }

  uint64_t completed = 0;
  kj::Maybe<kj::Exception> error;  // the first failed call

private:
  const Options& o;
  ExternalAuthService::Client cap;
  kj::Timer& timer;
  kj::String filler;
  kj::TimePoint deadline = kj::origin<kj::TimePoint>();
  uint64_t started = 0;

  void fill(AuthRequest::Builder r, uint64_t n) {
    r.setMethod(o.method);
    r.setHost(o.host);
    r.setPath(o.path);
    r.setQuery(o.query);
    r.setClientIp(o.clientIp);
    kj::String requestId = kj::str("req-", n);
    struct { kj::StringPtr name, value; } defaults[4] = {
        {"authorization", "Bearer good"}, {"user-agent", "curl/8.5.0"}, {"accept", "*/*"},
        {"x-request-id", requestId}};
    unsigned fixed = kj::min(o.headers, 4u);
    kj::Vector<bool> used(o.extra.size());
    for (size_t i = 0; i < o.extra.size(); i++) used.add(false);
    for (unsigned i = 0; i < fixed; i++) {
      for (size_t j = 0; j < o.extra.size(); j++) {
        if (!used[j] && o.extra[j].name == defaults[i].name) {
          defaults[i].value = o.extra[j].value;
          used[j] = true;
          break;
        }
      }
    }
    unsigned appended = 0;
    for (bool u: used) appended += !u;
    auto headers = r.initHeaders(o.headers + appended);
    unsigned k = 0;
    for (unsigned i = 0; i < fixed; i++, k++) {
      headers[k].setName(defaults[i].name);
      headers[k].setValue(defaults[i].value);
    }
    for (unsigned i = fixed; i < o.headers; i++, k++) {
      headers[k].setName(kj::str("x-fill-", i));
      headers[k].setValue(filler);
    }
    for (size_t j = 0; j < o.extra.size(); j++) {
      if (used[j]) continue;
      headers[k].setName(o.extra[j].name);
      headers[k].setValue(o.extra[j].value);
      k++;
    }
  }

  static void print(AuthDecision::Reader d) {
    kj::String action;
    switch (d.getAction()) {
      case DecisionAction::PASS: action = kj::str("\"pass\""); break;
      case DecisionAction::BLOCK: action = kj::str("\"block\""); break;
      case DecisionAction::REDIRECT: action = kj::str("\"redirect\""); break;
      default: action = kj::str(static_cast<uint16_t>(d.getAction()));
    }
    auto line = kj::str("{\"action\":", action, ",\"statusCode\":", d.getStatusCode(),
                        ",\"upstreamValue\":", json(d.getUpstreamValue()),
                        ",\"redirectLocation\":", json(d.getRedirectLocation()),
                        ",\"responseBody\":", json(d.getResponseBody()), "}\n");
    fwrite(line.begin(), 1, line.size(), stdout);
  }
};

[[noreturn]] static void usage(const char* why) {
  fprintf(stderr, "client: %s\nusage: client SOCKET [--calls N] [--in-flight K] [--headers H] "
                  "[--value-size B] [--header 'N: V']... [--method M] [--host H] [--path P] "
                  "[--query Q] [--client-ip A] [--timeout-ms T] [--print] [--bench SECONDS]\n", why);
  exit(2);
}

static Options parse(int argc, char* argv[]) {
  Options o;
  for (int i = 1; i < argc; i++) {
    kj::StringPtr arg = argv[i];
    auto value = [&]() -> kj::StringPtr {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    auto number = [&]() -> double {
      auto v = value();
      char* end;
      double d = strtod(v.cStr(), &end);
      if (v.size() == 0 || *end != '\0' || d < 0) usage("bad number");
      return d;
    };
    if (arg == "--calls") o.calls = number();
    else if (arg == "--in-flight") o.inFlight = number();
    else if (arg == "--headers") o.headers = number();
    else if (arg == "--value-size") o.valueSize = number();
    else if (arg == "--timeout-ms") o.timeoutMs = number();
    else if (arg == "--bench") o.benchSeconds = number();
    else if (arg == "--print") o.print = true;
    else if (arg == "--method") o.method = value();
    else if (arg == "--host") o.host = value();
    else if (arg == "--path") o.path = value();
    else if (arg == "--query") o.query = value();
    else if (arg == "--client-ip") o.clientIp = value();
    else if (arg == "--header") {
      auto h = value();
      KJ_IF_MAYBE(colon, h.findFirst(':')) {
        auto v = h.slice(*colon + 1);
        while (v.startsWith(" ")) v = v.slice(1);
        o.extra.add(NameValue{kj::heapString(h.slice(0, *colon)), kj::heapString(v)});
      } else usage("--header needs 'name: value'");
    } else if (arg.startsWith("--")) usage("unknown option");
    else if (o.socket == nullptr) o.socket = arg;
    else usage("too many arguments");
  }
  if (o.socket == nullptr) usage("missing SOCKET");
  if (o.inFlight < 1) o.inFlight = 1;
  return o;
}

static double cpuSeconds() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char* argv[]) {
  Options o = parse(argc, argv);
  kj::String address = o.socket.startsWith("unix:") ? kj::str(o.socket) : kj::str("unix:", o.socket);
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&]() {
    capnp::EzRpcClient client(address);
    auto& waitScope = client.getWaitScope();
    Run run(o, client.getMain<ExternalAuthService>(), client.getIoProvider().getTimer());
    auto& clock = kj::systemPreciseMonotonicClock();
    auto start = clock.now();
    double cpuStart = cpuSeconds();
    kj::Vector<kj::Promise<void>> lanes(o.inFlight);
    for (unsigned i = 0; i < o.inFlight; i++) lanes.add(run.lane());
    kj::joinPromises(lanes.releaseAsArray()).wait(waitScope);
    KJ_IF_MAYBE(e, run.error) {
      // Give the event loop a moment to write what is queued (the Finish of a timed-out call).
      client.getIoProvider().getTimer().afterDelay(20 * kj::MILLISECONDS).wait(waitScope);
      kj::throwFatalException(kj::mv(*e));
    }
    double seconds = (clock.now() - start) / kj::NANOSECONDS / 1e9;
    printf("{\"calls\":%llu,\"seconds\":%.3f,\"callsPerSec\":%.0f,\"cpuSeconds\":%.3f}\n",
           static_cast<unsigned long long>(run.completed), seconds,
           seconds > 0 ? run.completed / seconds : 0.0, cpuSeconds() - cpuStart);
  });
  KJ_IF_MAYBE(e, error) fail(e->getDescription());
  fflush(stdout);
  return 0;
}
