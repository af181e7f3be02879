"""gunicorn settings; every one carries its reason (after Heroku's python-getting-started)."""
# Every module-level name here is read as a gunicorn setting ("config" is one): import privately.
from config import server as _server_settings

_server = _server_settings()

wsgi_app = "wsgi:app"
# [::] takes IPv4 and IPv6 alike; Heroku routes to $PORT, which config.server() reads.
bind = [f"[::]:{_server['port']}"]
# Flow requests are CPU-bound decryption plus I/O-bound lookups: processes for the CPU, threads
# so a slow lookup does not hold a whole process.
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
access_log_format = 'method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s duration_us=%(D)s request_id=%({x-request-id}i)s'
# Load the app once in the master and fork: less memory, and keys are parsed once for all workers.
preload_app = _server["production"]
# Off: with SO_REUSEPORT every worker listens on its own socket, and when two workers recycle at
# once (max_requests) nobody listens; the benchmark saw refused connections (docs/benchmarks.md).
reuse_port = False
# Behind Heroku's router only; it sets X-Forwarded-Proto.
forwarded_allow_ips = "*" if _server["production"] else "127.0.0.1,::1"
# Recycle workers now and then so a slow leak never becomes an outage.
max_requests = 5000
max_requests_jitter = 2500
