"""EventBridge's delivery as AWS does it: PutEvents accepts an event whatever its rules' targets are.

moto delivers to a few kinds of target (log groups, SQS queues, archives, other buses) and fails the whole
PutEvents call with a server error when a matching rule also targets anything else: a state machine, a
function, a topic, as opsplane's own template does. On AWS, PutEvents answers for the event's acceptance;
each target's delivery is retried on its own, "for up to 24 hours and up to 185 times", and then dropped or
sent to the target's dead-letter queue, never reported to the caller
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html). The model delivers what moto
can and counts the rest in the publishing world: ``undelivered.<service>``.
"""

from moto.events import models
from moto.utilities.arns import parse_arn

from . import world

# The target services moto's Rule.send_to_targets delivers to.
_DELIVERED = {"logs", "sqs", "events"}


def _service(target):
    return parse_arn(target["Arn"]).service


def _deliver_what_moto_can(original):
    def send_to_targets(self, event, transform_input=True):
        undelivered = [t for t in self.targets if _service(t) not in _DELIVERED]
        if not undelivered:
            return original(self, event, transform_input)
        _, w = world.current()
        if w is not None and self.event_pattern.matches_event(event):
            for target in undelivered:
                w.count(f"undelivered.{_service(target)}")
        # Requests are served one at a time (the launcher's lock), so the rule's targets can be narrowed for
        # this one delivery and put back.
        targets = self.targets
        self.targets = [t for t in targets if t not in undelivered]
        try:
            return original(self, event, transform_input)
        finally:
            self.targets = targets

    return send_to_targets


def install():
    models.Rule.send_to_targets = _deliver_what_moto_can(models.Rule.send_to_targets)
