"""appointment: pick a day (DatePicker on-select-action → free slots from the calendar API), pick
a time (held for you in Redis for a few minutes), confirm (booked). Holds and bookings are atomic
(flows/slots.py): two users can never hold or book the same slot; an expired hold frees it.
"""
from datetime import date, timedelta
from pathlib import Path

from validation.checks import date_within, pattern, required
from flows.protocol import Finish, Screen
from flows.registry import Flow, Lookup
from validation.forms import Field, Form

flow = Flow("appointment", Path(__file__).with_suffix(".json"), title="Appointment",
            lookups=[Lookup("calendar", settings="CALENDAR_API", policy="closed", path="/calendar")],
            categories=("APPOINTMENT_BOOKING",))

WINDOW_DAYS = 30
DAY = Field("date", required(), date_within(0, WINDOW_DAYS), lookup="calendar", policy="closed",
            verify=lambda day: None if isinstance(day.get("slots"), list) else "closed",
            messages={"not_found": "We're not open that day", "closed": "We're not open that day",
                      "required": "Pick a day"})
SLOT = Field("slot", required(), pattern(r"\d\d:\d\d"), messages={"required": "Pick a time"})
PICK_DAY, PICK_SLOT = Form(DAY), Form(DAY, SLOT)
NO_TOKEN = "This form can't hold a time; please open it again from the chat."
TAKEN = "Someone just took this time; please pick another"


def book_data(**values) -> dict:
    today = date.today()
    data = {"min_date": today.isoformat(), "max_date": (today + timedelta(days=WINDOW_DAYS)).isoformat(),
            "slots": [{"id": "none", "title": "Pick a day first"}], "show_slots": False,
            "date_error": "", "slot_error": "", "show_slot_error": False, "hold_text": "", "show_hold": False}
    data.update(values)
    return data


def _again(result, **values) -> Screen:
    # Dropdown has no error-message property: its error shows in a caption beside it.
    data = book_data(**{**result.error_data(), **values})
    data["show_slot_error"] = bool(data["slot_error"])
    return Screen("BOOK", data, error_message=result.snackbar)


def _free(ctx, day: str, record: dict) -> list[str]:
    times = [t for t in record["slots"] if isinstance(t, str) and len(t) == 5][:48]
    taken = ctx.slots.unavailable(day, times, ctx.token)
    return [t for t in times if t not in taken]


def _slot_list(free: list[str]) -> dict:
    return {"slots": [{"id": t, "title": t} for t in free], "show_slots": True}


@flow.on_init
def start(ctx):
    return Screen("BOOK", book_data())


@flow.on_exchange("BOOK")
def pick(ctx):
    step = ctx.data.get("step")
    result = (PICK_DAY if step == "day_chosen" else PICK_SLOT).check(ctx)
    if "date" in result.errors:
        return _again(result)
    day = result.values["date"]
    free = _free(ctx, day, result.records["date"])
    if not free:
        return _again(result.fail("date", "No free times that day; please pick another"))
    if step == "day_chosen" or not result.ok:
        return _again(result, **_slot_list(free))
    if ctx.token is None:
        return _again(result.fail("slot", NO_TOKEN), **_slot_list(free))
    time_ = result.values["slot"]
    slots = ctx.slots
    if time_ not in free or not slots.hold(day, time_, ctx.token):
        free = [t for t in free if t != time_]
        return _again(result.fail("slot", TAKEN), **_slot_list(free))
    previous = (ctx.carried.get("date"), ctx.carried.get("slot"))
    if previous[0] and previous != (day, time_):
        slots.release(previous[0], previous[1], ctx.token)
    ctx.carry(date=day, slot=time_)
    minutes = max(1, round(slots.hold_seconds / 60))
    hold_text = f"{time_} is held for you for {minutes} minute{'s' if minutes > 1 else ''}."
    if step == "time_chosen":
        return _again(result, **_slot_list(free), hold_text=hold_text, show_hold=True)
    label = date.fromisoformat(day).strftime("%A %d %B %Y")
    return Screen("CONFIRM", {"summary_text": f"{label} at {time_}",
                              "hold_text": f"We hold this time for you for {minutes} minutes."})


@flow.on_exchange("CONFIRM")
def confirm(ctx):
    day, time_ = ctx.carried.get("date"), ctx.carried.get("slot")
    if not (day and time_ and ctx.token):
        return Screen("BOOK", book_data(), error_message="Please pick a day and a time first.")
    if not ctx.slots.book(day, time_, ctx.token):
        label = date.fromisoformat(day).strftime("%A %d %B %Y")
        return Screen("CONFIRM", {"summary_text": f"{label} at {time_}", "hold_text": TAKEN + "."},
                      error_message="Sorry, this time was just taken. Go back to pick another.")
    return Finish({"date": day, "slot": time_})
