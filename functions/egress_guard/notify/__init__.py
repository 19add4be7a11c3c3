"""Telling people what egress-guard decided (design §2 notify_slack).

- ``summary``  pure: what a finding says, in words (outcome titles, change before/after, console links);
- ``render``   pure: the Slack incoming-webhook payload (Block Kit), within Slack's limits;
- ``terminal`` pure: the same message as a rich renderable (``make demo``, ``egress-guard replay``);
- ``deliver``  the only side effect: post to the webhook with retries, never losing a finding silently;
- ``settings`` / ``message``: what notify_slack reads at cold start and from each Pub/Sub message.

Nothing is imported here on purpose: notify_slack's cold start must not pay for ``rich``.
"""
