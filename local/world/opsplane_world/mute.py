"""CloudWatch alarm mute rules, which moto does not have: PutAlarmMuteRule, GetAlarmMuteRule,
ListAlarmMuteRules and DeleteAlarmMuteRule, each rule's status computed at the request's virtual time.

A rule mutes its target alarms' actions for ``Duration`` (ISO 8601, PT1M to P15D) from each time its
schedule fires: ``at(yyyy-MM-ddThh:mm)`` once, ``cron(Minutes Hours Day-of-month Month Day-of-week)`` on
every match, both in the rule's ``Timezone`` (UTC when absent), between ``StartDate`` and ``ExpireDate``.
Status: ACTIVE while a window is open, SCHEDULED while one is still to come, EXPIRED after the expire date
or a one-time window.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutAlarmMuteRule.html
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Schedule.html
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetAlarmMuteRule.html
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-mute-rules-behaviour.html
"""

import datetime
import json
import re
from zoneinfo import ZoneInfo

OPERATIONS = {"PutAlarmMuteRule", "GetAlarmMuteRule", "ListAlarmMuteRules", "DeleteAlarmMuteRule"}

_AT = re.compile(r"^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})\)$")
_CRON = re.compile(r"^cron\(([^)]*)\)$")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}


class Invalid(ValueError):
    """A request CloudWatch refuses with ``InvalidParameterValue``."""


def _duration(text):
    m = _DURATION.match(text or "")
    if not m or not any(m.groups()):
        raise Invalid(f"Duration {text!r} is not an ISO 8601 duration such as PT4H")
    days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    span = datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if not datetime.timedelta(minutes=1) <= span <= datetime.timedelta(days=15):
        raise Invalid(f"Duration {text!r} must be from PT1M to P15D")
    return span


def _field(text, low, high, names):
    values = set()
    for part in text.split(","):
        if part == "*":
            values.update(range(low, high + 1))
            continue
        bounds = [names.get(p.upper(), None) if not p.isdigit() else int(p) for p in part.split("-")]
        if None in bounds or len(bounds) > 2 or not all(low <= b <= high for b in bounds):
            raise Invalid(f"cron field {text!r} is not valid")
        values.update(range(bounds[0], bounds[-1] + 1))
    return values


def _cron(text):
    fields = text.split()
    if len(fields) != 5:
        raise Invalid(f"cron({text}) must have five fields: Minutes Hours Day-of-month Month Day-of-week")
    minutes, hours, dom, months, dow = fields
    return (
        _field(minutes, 0, 59, {}),
        _field(hours, 0, 23, {}),
        _field(dom, 1, 31, {}),
        _field(months, 1, 12, _MONTHS),
        _field(dow, 0, 6, _DAYS),
        dom == "*",
        dow == "*",
    )


def _matches(spec, t):
    minutes, hours, dom, months, dow, any_dom, any_dow = spec
    if t.minute not in minutes or t.hour not in hours or t.month not in months:
        return False
    day_ok, weekday_ok = t.day in dom, (t.weekday() + 1) % 7 in dow
    # Standard cron: when both day fields are restricted, either may match.
    if any_dom or any_dow:
        return day_ok and weekday_ok
    return day_ok or weekday_ok


class Rule:
    def __init__(self, name, arn, body, now):
        schedule = (body.get("Rule") or {}).get("Schedule") or {}
        self.name, self.arn = name, arn
        self.description = body.get("Description")
        self.expression = schedule.get("Expression") or ""
        self.duration_text = schedule.get("Duration")
        self.duration = _duration(self.duration_text)
        self.timezone = schedule.get("Timezone") or "UTC"
        try:
            self.zone = ZoneInfo(self.timezone)
        except (KeyError, ValueError) as err:
            raise Invalid(f"Timezone {self.timezone!r} is not a time zone identifier") from err
        self.targets = list((body.get("MuteTargets") or {}).get("AlarmNames") or [])
        if len(self.targets) > 100:
            raise Invalid("MuteTargets.AlarmNames: a mute rule targets at most 100 alarms")
        self.start = _time(body.get("StartDate"))
        self.expire = _time(body.get("ExpireDate"))
        self.updated = now
        at, cron = _AT.match(self.expression), _CRON.match(self.expression)
        if at:
            y, mo, d, h, mi = (int(g) for g in at.groups())
            self.once = datetime.datetime(y, mo, d, h, mi, tzinfo=self.zone)
            self.cron = None
        elif cron:
            self.once = None
            self.cron = _cron(cron.group(1))
        else:
            raise Invalid(f"Expression {self.expression!r} must be at(yyyy-MM-ddThh:mm) or cron(...)")

    def status(self, now):
        if self.expire is not None and now >= self.expire:
            return "EXPIRED"
        if self.once is not None:
            opens = max(self.once, self.start) if self.start else self.once
            closes = self.once + self.duration
            if opens <= now < closes:
                return "ACTIVE"
            return "SCHEDULED" if now < opens else "EXPIRED"
        if self.start is not None and now < self.start:
            return "SCHEDULED"
        # A window is open when the schedule fired within the last Duration (minute by minute, in its zone).
        local = now.astimezone(self.zone).replace(second=0, microsecond=0)
        steps = int(self.duration.total_seconds() // 60)
        for back in range(steps + 1):
            fired = local - datetime.timedelta(minutes=back)
            if _matches(self.cron, fired) and (self.start is None or fired >= self.start):
                if now < fired + self.duration:
                    return "ACTIVE"
        return "SCHEDULED"

    def summary(self, now):
        return {
            "AlarmMuteRuleArn": self.arn,
            "Status": self.status(now),
            "MuteType": "ONE_TIME" if self.once is not None else "RECURRING",
            "LastUpdatedTimestamp": self.updated.timestamp(),
            **({"ExpireDate": self.expire.timestamp()} if self.expire else {}),
        }

    def full(self, now):
        schedule = {"Expression": self.expression, "Duration": self.duration_text, "Timezone": self.timezone}
        return {
            **self.summary(now),
            "Name": self.name,
            "Description": self.description,
            "Rule": {"Schedule": schedule},
            "MuteTargets": {"AlarmNames": self.targets},
            **({"StartDate": self.start.timestamp()} if self.start else {}),
        }


def _time(value):
    if value is None:
        return None
    return datetime.datetime.fromtimestamp(float(value), tz=datetime.timezone.utc)


def _json(status, value):
    return status, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(value)


def _error(status, code, message):
    return _json(status, {"__type": code, "message": message})


def serve(w, action, body, region, account, t_ms):
    """Answers a mute rule operation on world ``w``'s rules in ``region`` at virtual time ``t_ms``."""
    rules = w.mute_rules.setdefault(region, {})
    now = datetime.datetime.fromtimestamp(t_ms / 1000.0, tz=datetime.timezone.utc)
    params = json.loads(body or b"{}")
    if action == "PutAlarmMuteRule":
        name = params.get("Name") or ""
        if not 1 <= len(name) <= 255:
            return _error(400, "InvalidParameterValue", "Name must be 1 to 255 characters")
        arn = f"arn:aws:cloudwatch:{region}:{account}:alarm-mute-rule:{name}"
        try:
            rules[name] = Rule(name, arn, params, now)
        except Invalid as err:
            return _error(400, "InvalidParameterValue", str(err))
        return _json(200, {})
    if action == "GetAlarmMuteRule":
        rule = rules.get(params.get("AlarmMuteRuleName"))
        if rule is None:
            return _error(404, "ResourceNotFoundException", f"Alarm mute rule {params.get('AlarmMuteRuleName')} does not exist")
        return _json(200, rule.full(now))
    if action == "DeleteAlarmMuteRule":
        # Idempotent, as the API reference says: deleting a rule that does not exist succeeds.
        rules.pop(params.get("AlarmMuteRuleName"), None)
        return _json(200, {})
    # ListAlarmMuteRules: filtered by target alarm and status, paged by MaxRecords (default 50).
    alarm, statuses = params.get("AlarmName"), params.get("Statuses") or []
    chosen = [
        r for _, r in sorted(rules.items())
        if (alarm is None or alarm in r.targets) and (not statuses or r.status(now) in statuses)
    ]
    size = int(params.get("MaxRecords") or 50)
    start = int(params.get("NextToken") or 0)
    page = chosen[start:start + size]
    answer = {"AlarmMuteRuleSummaries": [r.summary(now) for r in page]}
    if start + size < len(chosen):
        answer["NextToken"] = str(start + size)
    return _json(200, answer)
