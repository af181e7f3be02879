"""flask doctor's checks: is this configuration ready for production, before a customer finds out?

Plain Python, no click: ``run()`` returns a ``Report`` of ``Check`` lines (ok, warn, fail, skip),
each failure with the fix in words; ``cli/doctor.py`` prints it. The order follows what depends
on what:

1. ``settings``: every setting present where production needs it, and parseable (keys load,
   durations parse, URLs are URLs). Read from the environment by ``config.load_readable``, so a
   setting the app would refuse is named, not hidden behind one traceback.
2. ``datastore``: Redis reachable, ``maxmemory-policy`` noeviction, memory used vs ``maxmemory``.
3. The app itself, built from the same settings (``build_app``): any refusal to start is a line.
4. Online only (skipped by ``offline``, the release phase's mode): ``meta`` (phone number, key,
   webhook subscription and fields, templates), ``channels`` (WASender session), ``public`` (an
   encrypted, signed ping at each served flow's public URL).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    summary: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    offline: bool
    production: bool = True
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, summary: str, fix: str = "") -> Check:
        # One line each: a multi-line message (an exception's) must not break the layout.
        check = Check(name, status, " ".join(str(summary).split()), " ".join(str(fix).split()))
        self.checks.append(check)
        return check

    def ok(self, name: str, summary: str) -> Check:
        return self.add(name, OK, summary)

    def warn(self, name: str, summary: str, fix: str = "") -> Check:
        return self.add(name, WARN, summary, fix)

    def fail(self, name: str, summary: str, fix: str = "") -> Check:
        return self.add(name, FAIL, summary, fix)

    def skip(self, name: str, summary: str) -> Check:
        return self.add(name, SKIP, summary)

    def required(self, name: str, summary: str, fix: str = "") -> Check:
        """A failure in production; in development (where the app fills it in) a warning."""
        return self.add(name, FAIL if self.production else WARN, summary, fix)

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)

    @property
    def failed(self) -> bool:
        return self.count(FAIL) > 0

    def as_dict(self) -> dict:
        return {"ok": not self.failed, "mode": "offline" if self.offline else "online",
                "production": self.production, "checks": [c.as_dict() for c in self.checks]}


# What makes the app refuse to start (security.ConfigurationError and playground's are
# RuntimeErrors; a bad FOLLOWUP_CHANNEL or ladder is a ValueError; an unreadable key file OSError).
STARTUP_ERRORS = (RuntimeError, ValueError, OSError)


def run(environ=None, *, offline: bool = False, build_app=None) -> Report:
    """Check the settings in ``environ`` (default: this process's environment).

    ``build_app(cfg)`` returns the Flask app for those settings (``app.create_app``), or raises
    what the app raises when it refuses to start."""
    from preflight import channels, datastore, meta, public, settings

    report = Report(offline=offline)
    cfg = settings.check(report, environ)
    if cfg is None:
        return report
    datastore.check(report, cfg)
    datastore.check_records(report, cfg)
    app = _build(report, cfg, build_app)
    if app is not None:
        settings.check_flow_names(report, app)
    online = [("meta", meta.check), ("wasender", channels.check), ("public-endpoint", public.check)]
    for name, step in online:
        if offline:
            report.skip(name, "not checked (--offline: no call to Meta, WASender or the public URL)")
        elif app is None:
            report.skip(name, "not checked: the app does not start with these settings")
        else:
            step(report, app)
    return report


def _build(report: Report, cfg: dict, build_app):
    if build_app is None:
        return None
    if report.failed:
        report.skip("app", "not started: fix the settings above first")
        return None
    try:
        app = build_app(cfg)
    except STARTUP_ERRORS as exc:
        report.fail("app", f"refuses to start: {exc}", "fix the setting the message names")
        return None
    flows = list(app.extensions["flows"])
    report.ok("app", f"starts with these settings; serves {len(flows)} flow(s): "
                     + (", ".join(f.name for f in flows) or "none"))
    return app
