"""Reference for `npm run bench`: the cold trial-authentication path (no user matches) done
natively by libargon2 (Debian python3-argon2) and OpenSSL AES-GCM (python3-cryptography), on
the same machine and the same parameters. Prints one JSON object.

usage: reference_trial.py USERS SECONDS [serial|threads|processes ...]
"""
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE0 = bytes(12)


def trial(psk, salt, header):
    key = hash_secret_raw(psk, salt, time_cost=3, memory_cost=8, parallelism=1, hash_len=32, type=Type.ID)
    try:
        plain = AESGCM(key[:16]).decrypt(NONCE0, header, None)
        return len(plain) == 7 and plain[0] == 4
    except InvalidTag:
        return False


def scan(args):
    psks, salt, header = args
    return sum(1 for psk in psks if not trial(psk, salt, header))


def measure(run_once, seconds):
    run_once()
    count, started = 0, time.perf_counter()
    while True:
        run_once()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count / elapsed


def main():
    users, seconds = int(sys.argv[1]), float(sys.argv[2])
    modes = sys.argv[3:] or ["serial", "threads", "processes"]
    psks = [os.urandom(16).hex().encode() for _ in range(users)]
    salt, header = os.urandom(16), os.urandom(23)
    halves = [(psks[: users // 2], salt, header), (psks[users // 2 :], salt, header)]
    result = {"users": users, "cores": os.cpu_count()}
    if "serial" in modes:
        result["serialUserTrialsPerSec"] = measure(lambda: scan((psks, salt, header)), seconds) * users
    if "threads" in modes:
        with ThreadPoolExecutor(2) as threads:
            result["twoThreadsUserTrialsPerSec"] = measure(lambda: list(threads.map(scan, halves)), seconds) * users
    if "processes" in modes:
        with Pool(2) as processes:
            result["twoProcessesUserTrialsPerSec"] = measure(lambda: processes.map(scan, halves), seconds) * users
    print(json.dumps(result))


if __name__ == "__main__":
    main()
