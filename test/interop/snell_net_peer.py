#!/usr/bin/python3
"""A minimal Snell client and multi-user server on the network, for interop tests.

Built on snell_peer.py's codec (written from the spec, never from authkit's code) and
plain blocking sockets: an independent third party for snell-probe and snell-serve.

  snell_net_peer.py client HOST PORT PSK ACTION [ARGS] [--obfs http]
      ACTION: ping | connect TARGET_HOST TARGET_PORT HEXDATA | connect-twice TARGET_HOST TARGET_PORT
              | udp TARGET_HOST TARGET_PORT HEXDATA | quic TARGET_HOST TARGET_PORT HEXDATA
              (quic: a v5 envelope over UDP; what comes back is the first datagram)
      Prints one JSON line: {"outcome", "reply", "received", "closeMs"}.
  snell_net_peer.py server USERS_FILE [--obfs http]
      USERS_FILE has name:psk lines. Serves on 127.0.0.1, any port; prints "listening PORT".
      Multi-user as OpenSnell: serial trial in file order, 50 ms before closing on no match.
      PING -> PONG; CONNECT / CONNECT-v2 -> echo (data back behind a lazy 00; v2 reuse);
      a target port of 1 is refused with errno 111 the way OpenSnell reports it.
"""

import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from snell_peer import (  # noqa: E402
    CIPHER_AES, HEADER_SEALED_LEN, MAX_CHUNK, NonceStream, PeerError, SALT_LEN, TAG_LEN,
    encode_quic, make_aead, open_frame, seal_frame,
)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(len(data))
        data += chunk
    return data


def read_frame(sock, stream):
    """One frame from the socket: returns the payload (b"" for a zero chunk)."""
    header = recv_exact(sock, HEADER_SEALED_LEN)
    plain = stream.open(header)
    if plain[0] != 4:
        raise PeerError("bad marker")
    pad_len = int.from_bytes(plain[3:5], "big")
    pay_len = int.from_bytes(plain[5:7], "big")
    if pay_len == 0:
        return b""
    body = bytearray(recv_exact(sock, pad_len + pay_len + TAG_LEN))
    padding = bytearray(body[:pad_len])
    sealed = bytearray(body[pad_len:])
    for i in range(0, min(len(padding), len(sealed)), 2):
        padding[i], sealed[i] = sealed[i], padding[i]
    return stream.open(bytes(sealed))


def frames(stream, payload, padding=b""):
    if not payload:
        return seal_frame(stream, b"", b"")["wire"]
    out = b""
    for i in range(0, len(payload), MAX_CHUNK):
        out += seal_frame(stream, padding if i == 0 else b"", payload[i:i + MAX_CHUNK])["wire"]
    return out


def target_bytes(host, port):
    name = host.encode()
    return bytes([len(name)]) + name + int(port).to_bytes(2, "big")


def http_obfs_request(first):
    head = ("GET / HTTP/1.1\r\nHost: bing.com\r\nUser-Agent: curl/7.88.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Content-Length: %d\r\n\r\n" % len(first))
    return head.encode() + first


def skip_http_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            raise EOFError(0)
        data += chunk


def tls_client_hello(first, host=b"cloudfront.net"):
    """The fake ClientHello of docs/snell.md §8 carrying up to 0x400 Snell bytes, then 17 03 03 records."""
    data, rest = first[:0x400], first[0x400:]
    n, h = len(data), len(host)
    hello = (bytes([0x16, 0x03, 0x01]) + (212 + n + h).to_bytes(2, "big") + bytes([0x01, 0x00]) + (208 + n + h).to_bytes(2, "big")
             + bytes([0x03, 0x03]) + int(time.time()).to_bytes(4, "big") + os.urandom(28) + bytes([0x20]) + os.urandom(32)
             + (56).to_bytes(2, "big") + os.urandom(56) + bytes([0x01, 0x00]) + (79 + n + h).to_bytes(2, "big")
             + bytes([0x00, 0x23]) + n.to_bytes(2, "big") + data
             + bytes([0x00, 0x00]) + (h + 5).to_bytes(2, "big") + (h + 3).to_bytes(2, "big") + bytes([0x00]) + h.to_bytes(2, "big") + host
             + bytes(66))
    assert hello[140:142] == n.to_bytes(2, "big")
    return hello + tls_records(rest)


def tls_records(data):
    out = b""
    for i in range(0, len(data), 0x4000):
        chunk = data[i:i + 0x4000]
        out += bytes([0x17, 0x03, 0x03]) + len(chunk).to_bytes(2, "big") + chunk
    return out


class TlsReader:
    """Reads the Snell bytes out of 17 03 03 records (after the handshake part was consumed)."""
    def __init__(self, sock, first=b""):
        self.sock, self.buffered = sock, first

    def recv(self, n):
        while not self.buffered:
            head = recv_exact(self.sock, 5)
            if head[:3] != bytes([0x17, 0x03, 0x03]):
                raise PeerError("expected an application-data record")
            self.buffered = recv_exact(self.sock, int.from_bytes(head[3:5], "big"))
        out, self.buffered = self.buffered[:n], self.buffered[n:]
        return out


# --------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------

def quic_client(host, port, psk, argv):
    salt = bytearray(os.urandom(SALT_LEN))
    salt[0] &= ~0x40  # the official server takes a set QUIC fixed bit for raw QUIC
    packet = encode_quic(psk, bytes(salt), argv[4], int(argv[5]), bytes.fromhex(argv[6]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.5)
    sock.sendto(packet, (host, port))
    try:
        reply, _ = sock.recvfrom(65535)
        result = {"outcome": "authenticated", "reply": {"kind": "quic"}, "received": reply.hex(), "closeMs": None}
    except socket.timeout:
        result = {"outcome": "timeout", "reply": None, "received": "", "closeMs": None}
    print(json.dumps(result), flush=True)


def client(argv):
    host, port, psk, action = argv[0], int(argv[1]), argv[2], argv[3]
    if action == "quic":
        quic_client(host, port, psk, argv)
        return
    obfs = argv[argv.index("--obfs") + 1] if "--obfs" in argv else "off"
    sock = socket.create_connection((host, port), timeout=5)
    salt = os.urandom(SALT_LEN)
    out = NonceStream(make_aead(psk, salt, CIPHER_AES))
    if action == "ping":
        first = bytes([1, 0, 0])
    elif action in ("connect", "connect-twice"):
        data = bytes.fromhex(argv[6]) if action == "connect" else b"first"
        first = bytes([1, 5, 0]) + target_bytes(argv[4], argv[5]) + data
    elif action == "udp":
        first = bytes([1, 6, 0])
    else:
        raise SystemExit("unknown action " + action)
    wire = salt + frames(out, first, os.urandom(300))
    sock.sendall(http_obfs_request(wire) if obfs == "http" else tls_client_hello(wire) if obfs == "tls" else wire)
    if obfs == "tls":
        # Later client bytes travel in records too; replies are read through them.
        raw_sock = sock

        class TlsSocket:
            def sendall(self, data):
                raw_sock.sendall(tls_records(data))

            def recv(self, n):
                return self.reader.recv(n)

        tls_sock = TlsSocket()
    sent = time.monotonic()
    result = {"outcome": "rejected", "reply": None, "received": "", "closeMs": None}
    try:
        if obfs == "http":
            skip_http_head(sock)
        elif obfs == "tls":
            # The client skips the fake ServerHello and ChangeCipherSpec (102 bytes) and 16 03 03, then one length.
            recv_exact(raw_sock, 105)
            first_data = recv_exact(raw_sock, int.from_bytes(recv_exact(raw_sock, 2), "big"))
            tls_sock.reader = TlsReader(raw_sock, first_data)
            sock = tls_sock
        server_salt = recv_exact(sock, SALT_LEN)
        inp = NonceStream(make_aead(psk, server_salt, CIPHER_AES))
        reply = read_frame(sock, inp)
        result["outcome"] = "authenticated"
        if reply[0] == 1:
            result["reply"] = {"kind": "pong"}
        elif reply[0] == 2:
            result["reply"] = {"kind": "error", "code": reply[1], "message": reply[3:3 + reply[2]].decode()}
        else:
            result["reply"] = {"kind": "tunnel"}
            received = reply[1:]
            if action == "udp":
                payload = bytes.fromhex(argv[6])
                datagram = bytes([1]) + target_bytes(argv[4], argv[5]) + payload
                sock.sendall(frames(out, datagram))
                back = read_frame(sock, inp)
                size = 4 if back[0] == 4 else 16
                received = back[1 + size + 2:]
            elif action == "connect":
                want = len(bytes.fromhex(argv[6]))
                while len(received) < want:
                    received += read_frame(sock, inp)
            else:
                # CONNECT-v2 reuse: end request one with a zero chunk each way, then a second request.
                sock.sendall(frames(out, b""))
                assert read_frame(sock, inp) == b"", "expected the server's zero chunk"
                sock.sendall(frames(out, bytes([1, 5, 0]) + target_bytes(argv[4], argv[5]) + b"second"))
                second = read_frame(sock, inp)
                assert second[0] == 0, "second reply"
                received = received + b"|" + second[1:]
            result["received"] = received.hex()
    except (EOFError, ConnectionResetError):
        result["closeMs"] = round((time.monotonic() - sent) * 1000, 1)
    except PeerError as error:
        result["error"] = str(error)
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------

def trial(users, salt, header):
    for name, psk in users:
        stream = NonceStream(make_aead(psk, salt, CIPHER_AES))
        try:
            plain = stream.open(header)
        except PeerError:
            continue
        if len(plain) == 7 and plain[0] == 4:
            return name, psk
    return None


def serve_connection(conn, users, obfs):
    raw = conn
    try:
        if obfs == "http":
            skip_http_head(conn)
        elif obfs == "tls":
            head = recv_exact(conn, 5)
            hello = recv_exact(conn, int.from_bytes(head[3:5], "big"))
            n = int.from_bytes(hello[135:137], "big")  # offset 140 of the record = 135 of the body
            tls_reader = TlsReader(conn, hello[137:137 + n])

            class TlsConn:
                first = [True]

                def recv(self, k):
                    return tls_reader.recv(k)

                def sendall(self, data):
                    if self.first[0]:
                        self.first[0] = False
                        server_hello = bytes([0x16, 0x03, 0x01, 0x00, 0x5b, 0x02, 0x00, 0x00, 0x57]) + bytes(87)
                        raw.sendall(server_hello + bytes([0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x16, 0x03, 0x03])
                                    + len(data).to_bytes(2, "big") + data)
                    else:
                        raw.sendall(tls_records(data))

                def close(self):
                    raw.close()

            conn = TlsConn()
        first = recv_exact(conn, SALT_LEN + HEADER_SEALED_LEN)
    except EOFError:
        raw.close()
        return
    salt, header = first[:SALT_LEN], first[SALT_LEN:]
    match = trial(users, salt, header)
    if match is None:
        time.sleep(0.05)
        conn.close()
        return
    _, psk = match

    class Prefixed:
        """The socket with the already-read header put back in front."""
        def __init__(self, prefix):
            self.prefix = prefix

        def recv(self, n):
            if self.prefix:
                out, self.prefix = self.prefix[:n], self.prefix[n:]
                return out
            return conn.recv(n)

    reader = Prefixed(header)
    inp = NonceStream(make_aead(psk, salt, CIPHER_AES))
    reply_salt = os.urandom(SALT_LEN)
    out = NonceStream(make_aead(psk, reply_salt, CIPHER_AES))
    prefix = [(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" if obfs == "http" else b"") + reply_salt]

    def send(payload):
        conn.sendall(prefix.pop() + frames(out, payload) if prefix else frames(out, payload))

    try:
        pending = read_frame(reader, inp)
        while True:
            if pending[:2] == bytes([1, 0]):
                send(bytes([1]))
                return
            cmd = pending[1]
            if cmd == 6:
                send(bytes([0]))
                while True:
                    datagram = read_frame(reader, inp)
                    pos = 2 + datagram[1] if datagram[1] else 3 + datagram[2]
                    payload = datagram[pos + 2:]
                    send(bytes([4, 127, 0, 0, 1]) + datagram[pos:pos + 2] + payload)
            id_len = pending[2]
            pos = 3 + id_len
            host_len = pending[pos]
            host = pending[pos + 1:pos + 1 + host_len].decode()
            port = int.from_bytes(pending[pos + 1 + host_len:pos + 3 + host_len], "big")
            data = pending[pos + 3 + host_len:]
            if port == 1:
                try:
                    socket.create_connection(("127.0.0.1", 1), timeout=1)
                except OSError as error:
                    message = ("dial tcp %s:%d: connect: connection refused" % (host, port)).encode()
                    send(bytes([2, error.errno & 0xFF, len(message)]) + message)
                    return
            # Echo: the lazy 00 goes out with the first bytes that come back.
            if not data:
                data = read_frame(reader, inp)
            if data:
                send(bytes([0]) + data)
                while True:
                    more = read_frame(reader, inp)
                    if not more:
                        break
                    send(more)
            else:
                send(bytes([0]))
            # The client's zero chunk: the echo ends, so does this request.
            send(b"")
            if cmd != 5:
                return
            pending = read_frame(reader, inp)
    except (EOFError, ConnectionResetError, BrokenPipeError, PeerError):
        pass
    finally:
        conn.close()


def server(argv):
    users = []
    with open(argv[0], encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                name, psk = line.split(":", 1)
                users.append((name, psk))
    obfs = argv[argv.index("--obfs") + 1] if "--obfs" in argv else "off"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print("listening %d" % listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(conn, users, obfs), daemon=True).start()


if __name__ == "__main__":
    {"client": client, "server": server}[sys.argv[1]](sys.argv[2:])
