"""gunicorn settings; every one carries its reason (after Heroku's python-getting-started)."""
# Every module-level name here is read as a gunicorn setting ("config" is one): import privately.
import os as _os
import sys as _sys

from config import ConfigError as _ConfigError, server as _server_settings

try:
    _server = _server_settings()
except _ConfigError as _exc:  # e.g. PORT=abc: one line, not gunicorn's "Failed to read config file"
    _sys.exit(f"Error: {_exc}")

wsgi_app = "wsgi:app"
# [::] takes IPv4 and IPv6 alike; Heroku routes to $PORT, which config.server() reads. Development
# (make run: dashboard open, signatures off) listens on 127.0.0.1 only.
bind = [f"{_server['host']}:{_server['port']}"]
# Flow requests are CPU-bound decryption plus I/O-bound lookups: processes for the CPU, threads
# so a slow lookup does not hold a whole process. 64 threads each (config.server): with the
# business API at 200 ms, 4 gave 38 req/s and a p90 of 6 s to 200 users; 64 serves misses at
# 0.62-0.64 of the cached rate with a p90 of 0.6-1 s at 150-200 users, where 32 ran short of
# threads (0.40) and 128 was no faster and outgrew the 64 pooled lookup connections
# (bench/latency.py, docs/benchmarks.md "Issue 16"). gevent measured no better and would need
# the whole app monkey-patched before preload.
worker_class = "gthread"
workers = _server["workers"]
threads = _server["threads"]
# Heartbeat timeout (gthread does not cap a request with it); below Heroku's 30 s router limit.
timeout = 20
# Heroku sends SIGKILL 30 s after SIGTERM: finish in-flight requests well before that.
graceful_timeout = 20
# The Heroku router keeps idle connections 90 s; staying open longer makes it the side that closes.
keepalive = 95
accesslog = "-"
access_log_format = ('method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s duration_us=%(D)s '
                     'request_id=%({x-request-id}i)s')
# Load the app once in the master and fork: less memory, keys parsed once for all workers, and a
# configuration error (config.ConfigError) stops gunicorn with one line (wsgi.py) before any
# worker boots; without it each worker fails in turn, traceback after traceback. Also in
# development: nothing here reloads code.
preload_app = True
# Off: with SO_REUSEPORT every worker listens on its own socket, and when two workers recycle at
# once (max_requests) nobody listens; the benchmark saw refused connections (docs/benchmarks.md).
reuse_port = False
# Behind Heroku's router only; it sets X-Forwarded-Proto.
forwarded_allow_ips = "*" if _server["production"] else "127.0.0.1,::1"
# Recycle workers now and then so a slow leak never becomes an outage.
max_requests = 5000
max_requests_jitter = 2500


def post_fork(server, worker):
    """Each worker sums its metrics in memory and writes them once a second (metrics/buffer.py):
    a thread, so it starts here, after the fork, never in the preloaded master."""
    from metrics import buffer_in_this_process

    buffer_in_this_process(worker.app.wsgi())


def worker_exit(server, worker):
    """A graceful stop (deploy, max_requests, SIGTERM) writes what the worker still holds.

    gunicorn also calls this in the master for a worker it reaped: nothing is held there."""
    if worker.pid == _os.getpid():
        from metrics import flush_this_process

        flush_this_process(worker.app.wsgi())
