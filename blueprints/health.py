"""GET /health: 200 with the Redis state, even when Redis is down, so a monitor sees the difference."""
from flask import Blueprint, current_app
from redis.exceptions import RedisError

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    try:
        current_app.extensions["redis"].ping()
        redis_state = "ok"
    except RedisError:
        redis_state = "down"
    return {"status": "ok" if redis_state == "ok" else "degraded", "redis": redis_state}
