"""Meta's side of the setup, read through the Graph API (response shapes: docs/meta-facts.md).

- the access token reads WHATSAPP_PHONE_NUMBER_ID (``GET /<PHONE_NUMBER_ID>``);
- the key Meta encrypts with is this app's, signature VALID (``messaging.business_key``, as
  ``flask keys status``);
- the app is subscribed to the WABA's webhooks (``GET /<WABA_ID>/subscribed_apps``). That edge
  lists apps, not fields: the fields (``messages``, ``flows``) and the callback URL belong to the
  app's own webhook, read with the app token at ``GET /<APP_ID>/subscriptions`` when
  WHATSAPP_APP_ID is set;
- each FLOW_TEMPLATES template exists in its language, is APPROVED and has a FLOW button
  (``GET /<WABA_ID>/message_templates?name=...``, which matches part of a name).
"""
from __future__ import annotations

from flows import keys
from flows.identity import mask_phone as masked
from messaging import business_key
from messaging.graph import GraphError, explain
from preflight.settings import channel_of

WEBHOOK_FIELDS = ("messages", "flows")
TEMPLATE_FIELDS = "name,language,status,category,components"


def check(report, app) -> None:
    cfg, graph = app.config, app.extensions["graph"]
    phone_id = cfg["WHATSAPP_PHONE_NUMBER_ID"]
    if not (cfg["WHATSAPP_ACCESS_TOKEN"] and phone_id):
        report.skip("meta", "not checked: no WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID "
                            f"(FOLLOWUP_CHANNEL {channel_of(cfg)})")
        return
    if not _phone_number(report, graph, phone_id):
        report.skip("meta-key", "not checked: the token cannot read the phone number")
        return
    _encryption_key(report, graph, phone_id, app.extensions["keyring"])
    waba = cfg["WHATSAPP_BUSINESS_ACCOUNT_ID"]
    if not waba:
        report.skip("webhook-subscription", "not checked: set WHATSAPP_BUSINESS_ACCOUNT_ID")
        return
    _subscription(report, graph, waba, cfg)
    _templates(report, graph, waba, cfg["FLOW_TEMPLATES"], cfg["FLOW_IDS"])


def _graph_failure(report, name: str, exc: GraphError, not_found: str) -> None:
    if exc.code == 100 or exc.status == 404:
        report.fail(name, f"{not_found} (Graph code {exc.code}: {exc.message})",
                    "check the id, and that the token's system user has access to the WhatsApp Business "
                    "Account (whatsapp_business_management and whatsapp_business_messaging)")
    else:
        report.fail(name, explain(exc), "see the Graph API message above")


def _phone_number(report, graph, phone_id: str) -> bool:
    try:
        node = graph.request("GET", phone_id, params={
            "fields": "id,display_phone_number,verified_name,quality_rating,code_verification_status"})
    except GraphError as exc:
        _graph_failure(report, "meta-phone-number", exc,
                       f"phone number id {phone_id} cannot be read with this token")
        return False
    digits = "".join(ch for ch in str(node.get("display_phone_number", "")) if ch.isdigit())
    quality = node.get("quality_rating") or "unknown"
    summary = (f"the token reads phone number id {phone_id}: {node.get('verified_name') or '(no name)'} "
               f"{masked(digits)}, quality {quality}")
    if quality == "RED":
        report.warn("meta-phone-number", summary, "quality RED: Meta may limit sends; see WhatsApp Manager")
    else:
        report.ok("meta-phone-number", summary)
    return True


def _encryption_key(report, graph, phone_id: str, ring) -> None:
    name = "meta-key"
    try:
        reg = business_key.registered(graph, phone_id)
    except GraphError as exc:
        _graph_failure(report, name, exc, f"the encryption key of phone number id {phone_id} cannot be read")
        return
    if reg.public_key is None:
        if reg.signature_status:
            report.warn(name, f"Meta answered the signature status ({reg.signature_status}) without the key: "
                              "fingerprints not compared", "flask keys status")
        else:
            report.fail(name, f"no public key registered for phone number id {phone_id}: every Flow "
                              "request fails", "flask keys upload")
        return
    try:
        match = business_key.which_local(reg, ring)
        fp = keys.fingerprint(reg.public_key)[:16]
    except (ValueError, keys.KeyConfigError):
        report.fail(name, "Meta returned a business_public_key that is not a PEM RSA key",
                    "flask keys upload")
        return
    if match is None:
        report.fail(name, f"Meta encrypts with sha256:{fp}…, a key this app does not hold: every Flow "
                          "request gets 421",
                    "flask keys upload (or set the FLOW_PRIVATE_KEY that matches it)")
    elif reg.signature_status != "VALID":
        report.fail(name, f"signature status {reg.signature_status or 'missing'} for sha256:{fp}…",
                    "upload the key again: flask keys upload")
    elif match == "previous":
        report.warn(name, f"Meta still encrypts with the previous key sha256:{fp}…: requests decrypt, "
                          "but the rotation is not finished", "flask keys upload")
    else:
        report.ok(name, f"Meta encrypts with this app's key sha256:{fp}…, signature VALID")


def webhook_url(cfg) -> str | None:
    base = cfg["PUBLIC_BASE_URL"]
    return f"{base.rstrip('/')}/webhooks/whatsapp" if base else None


def _subscription(report, graph, waba: str, cfg) -> None:
    name = "webhook-subscription"
    try:
        rows = graph.request("GET", f"{waba}/subscribed_apps").get("data") or []
    except GraphError as exc:
        _graph_failure(report, name, exc, f"the WhatsApp Business Account {waba} cannot be read")
        return
    apps = {str((r.get("whatsapp_business_api_data") or {}).get("id")): r
            for r in rows if isinstance(r, dict)}
    names = ", ".join(f"{(r.get('whatsapp_business_api_data') or {}).get('name', '?')} ({i})"
                      for i, r in apps.items())
    subscribe = (f"POST /{cfg['WHATSAPP_API_VERSION']}/{waba}/subscribed_apps with this app's system-user "
                 "token (curl -X POST -H \"Authorization: Bearer $WHATSAPP_ACCESS_TOKEN\" "
                 f"https://graph.facebook.com/{cfg['WHATSAPP_API_VERSION']}/{waba}/subscribed_apps)")
    if not apps:
        report.fail(name, f"no app is subscribed to the webhooks of WABA {waba}: no completion or message "
                          "reaches /webhooks/whatsapp", subscribe)
        return
    app_id = cfg["WHATSAPP_APP_ID"]
    if app_id and app_id not in apps:
        report.fail(name, f"app {app_id} is not subscribed to WABA {waba} (subscribed: {names})", subscribe)
        return
    override = (apps.get(app_id) or {}).get("override_callback_uri") if app_id else None
    ours = webhook_url(cfg)
    if override and ours and override.rstrip("/") != ours:
        report.fail(name, f"this WABA's messages webhooks go to {override}, not {ours}",
                    f"POST /{waba}/subscribed_apps with override_callback_uri={ours}, or remove the override")
        return
    report.ok(name, f"subscribed to WABA {waba}: {names}")
    if app_id:
        _fields(report, graph, app_id, cfg, ours)
    else:
        report.warn("webhook-fields", "not checked: subscribed_apps lists apps, not fields, so messages and "
                                      "flows cannot be confirmed from the WABA",
                    "set WHATSAPP_APP_ID to read the app's webhook fields with its app token")


def _fields(report, graph, app_id: str, cfg, ours: str | None) -> None:
    name = "webhook-fields"
    where = ("App Dashboard → WhatsApp → Configuration: callback URL "
             + (ours or "<PUBLIC_BASE_URL>/webhooks/whatsapp")
             + ", verify token WHATSAPP_VERIFY_TOKEN, subscribe the messages and flows fields")
    try:
        rows = graph.request("GET", f"{app_id}/subscriptions",
                             access_token=f"{app_id}|{cfg['WHATSAPP_APP_SECRET']}").get("data") or []
    except GraphError as exc:
        if exc.code == 190:
            report.fail(name, "Meta refused the app token WHATSAPP_APP_ID|WHATSAPP_APP_SECRET: the app id "
                              "or the app secret is wrong (and a wrong secret fails every signature check)",
                        "App Dashboard → App settings → Basic: App ID and App Secret")
        else:
            _graph_failure(report, name, exc, f"the webhooks of app {app_id} cannot be read")
        return
    sub = next((r for r in rows
                if isinstance(r, dict) and r.get("object") == "whatsapp_business_account"), None)
    if sub is None:
        report.fail(name, f"app {app_id} has no whatsapp_business_account webhook", where)
        return
    fields = {f.get("name") if isinstance(f, dict) else f for f in sub.get("fields") or []}
    missing = [f for f in WEBHOOK_FIELDS if f not in fields]
    callback = str(sub.get("callback_url") or "")
    if sub.get("active") is False:
        report.fail(name, f"app {app_id}'s whatsapp_business_account webhook is not active", where)
    elif missing:
        report.fail(name, f"app {app_id} is not subscribed to the {' and '.join(missing)} field(s): "
                          + ("no completion arrives" if "messages" in missing
                             else "no Flow health alert arrives"),
                    where)
    elif ours and callback.rstrip("/") != ours:
        report.fail(name, f"webhooks go to {callback or '(no URL)'}, not {ours}", where)
    else:
        report.ok(name, f"app {app_id} receives {', '.join(WEBHOOK_FIELDS)} at {callback or '(unknown URL)'}")


def _templates(report, graph, waba: str, templates: dict, flow_ids: dict) -> None:
    if not templates:
        report.skip("templates", "FLOW_TEMPLATES not set: outside the 24-hour window no Flow can be resent "
                                 "on the Cloud API")
        return
    for flow, (tname, language) in sorted(templates.items()):
        name = f"template {flow}"
        try:
            rows = graph.request("GET", f"{waba}/message_templates",
                                 params={"name": tname, "fields": TEMPLATE_FIELDS,
                                         "limit": 100}).get("data") or []
        except GraphError as exc:
            _graph_failure(report, name, exc, f"the templates of WABA {waba} cannot be read")
            continue
        same = [t for t in rows if isinstance(t, dict) and t.get("name") == tname]
        found = next((t for t in same if t.get("language") == language), None)
        if found is None:
            others = ", ".join(sorted(str(t.get("language")) for t in same))
            report.fail(name, f"{tname} ({language}) is not in WABA {waba}"
                              + (f"; it exists in {others}" if others else ""),
                        "create it with a Flow button, or fix FLOW_TEMPLATES")
            continue
        status = found.get("status")
        buttons = [b for c in found.get("components") or []
                   if isinstance(c, dict) and c.get("type") == "BUTTONS"
                   for b in c.get("buttons") or [] if isinstance(b, dict)]
        flow_button = next((b for b in buttons if str(b.get("type", "")).upper() == "FLOW"), None)
        if status != "APPROVED":
            report.fail(name, f"{tname} ({language}) is {status}: it cannot be sent",
                        "WhatsApp Manager → Message templates: wait for approval or fix the rejection")
        elif flow_button is None:
            report.fail(name, f"{tname} ({language}) has no FLOW button: it cannot open the Flow",
                        "create a template with a Flow button for this flow")
        elif flow_ids.get(flow) and str(flow_button.get("flow_id")) != str(flow_ids[flow]):
            report.warn(name, f"{tname}'s button opens Flow {flow_button.get('flow_id')}, FLOW_IDS says "
                              f"{flow_ids[flow]}", "make them the same Flow")
        else:
            report.ok(name, f"{tname} ({language}) APPROVED with a FLOW button")
