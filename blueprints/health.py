"""GET /health: 200 when Redis answers, 503 when it does not (down or hung), within the request's
Redis budget (``REDIS_REQUEST_TIMEOUT_SECONDS``, redis_budget.py): a monitor gets its answer at once."""
from flask import Blueprint, current_app
from redis.exceptions import RedisError

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    try:
        current_app.extensions["redis"].ping()
    except RedisError:
        return {"status": "degraded", "redis": "down"}, 503
    return {"status": "ok", "redis": "ok"}
