"""A Finding as a Slack incoming-webhook payload (Block Kit). Pure: no I/O, same input -> same output.

The message reads top to bottom: what happened (header, with a DRY-RUN badge), why (the reason),
where and who (fields), what changed (before -> after per change), where to look (console links),
and the finding id to find it in the logs. It always fits Slack's limits, however large the finding:
long change lists are cut and summarised with a count, long texts are clipped.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from egress_guard.findings import Finding, Mode, Outcome
from egress_guard.notify.summary import (
    DEFAULT_CONSOLE_BASE,
    DRY_RUN_BADGE,
    OUTCOME_STYLES,
    ChangeSummary,
    Link,
    change_counts,
    console_links,
    dry_run_note,
    headline,
    region_of,
    summarise_change,
    where_fields,
)

# Slack's Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10

# Our own limits, well inside Slack's, so that a message stays readable.
MAX_CHANGES_SHOWN = 10
MAX_CHANGE_TEXT = 900
MAX_DETAIL_LINES = 8
MAX_FIELD_VALUE = 200
MAX_FALLBACK_TEXT = 300
MAX_TEXT_ONLY = 3000  # the text-only fallback payload (Slack shows ~4000 characters before "Show more")
MAX_CHANGES_TEXT_ONLY = 15


def escape(text: str) -> str:
    """Slack mrkdwn control characters (https://docs.slack.dev/messaging/formatting-message-text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when cut, never inside an `&amp;` entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _code(text: str) -> str:
    # A backtick inside would end the code span early.
    return "`" + escape(text.replace("`", "'")) + "`"


def _mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, limit) or " ")


def fallback_text(finding: Finding) -> str:
    """The notification / screen-reader text Slack shows where blocks cannot be shown."""
    where = ", ".join(part for part in (f"project {finding.project}", region_of(finding)) if part)
    return clip(f"{headline(finding)} ({where})", MAX_FALLBACK_TEXT)


def render_finding(finding: Finding, *, console_base: str = DEFAULT_CONSOLE_BASE) -> dict[str, Any]:
    """The webhook payload: `text` (fallback) and `blocks`, within Slack's limits."""
    blocks: list[Block] = [_header(finding)]
    if finding.mode is Mode.DRY_RUN:
        blocks.append(ContextBlock(elements=[_mrkdwn(f":test_tube: *{DRY_RUN_BADGE}*  {escape(dry_run_note(finding))}")]))
    blocks.append(SectionBlock(text=_mrkdwn(f"*Why:* {escape(finding.reason or 'no reason recorded')}")))
    blocks.append(SectionBlock(fields=_fields(finding)))
    blocks.append(DividerBlock())
    blocks.extend(_change_blocks(finding))
    links = console_links(finding, console_base=console_base)
    if links:
        blocks.append(SectionBlock(text=_mrkdwn(_links_text(links))))
    blocks.append(ContextBlock(elements=[_mrkdwn(_footer(finding))]))
    if len(blocks) > MAX_BLOCKS:  # unreachable by construction (at most ~22); kept as the contract
        raise AssertionError(f"rendered {len(blocks)} blocks, Slack allows {MAX_BLOCKS}")
    return {"text": fallback_text(finding), "blocks": [block.to_dict() for block in blocks]}


def render_text_only(finding: Finding, *, console_base: str = DEFAULT_CONSOLE_BASE) -> dict[str, Any]:
    """The same message without blocks: what is posted when Slack refuses the blocks, so that a
    finding is never lost because of its formatting."""
    style = OUTCOME_STYLES[finding.outcome]
    lines = [f"{style.emoji} *{escape(headline(finding))}*"]
    if finding.mode is Mode.DRY_RUN:
        lines.append(f"*{DRY_RUN_BADGE}*: {escape(dry_run_note(finding))}")
    lines.append(f"*Why:* {escape(finding.reason or 'no reason recorded')}")
    lines.append(" · ".join(f"{label}: {escape(value)}" for label, value in where_fields(finding)))
    if finding.changes:
        lines.append(f"*Changes:* {escape(change_counts(finding.changes))}")
        for change in finding.changes[:MAX_CHANGES_TEXT_ONLY]:
            summary = summarise_change(change, planned=finding.outcome is Outcome.PLANNED)
            detail = "; ".join(summary.details[:3])
            lines.append(f"• {summary.verb} {escape(summary.kind)} {escape(summary.name)}" + (f": {escape(detail)}" if detail else ""))
        if len(finding.changes) > MAX_CHANGES_TEXT_ONLY:
            lines.append(f"… and {len(finding.changes) - MAX_CHANGES_TEXT_ONLY} more changes")
    else:
        lines.append("*Changes:* none")
    links = console_links(finding, console_base=console_base)
    if links:
        lines.append(_links_text(links))
    lines.append(f"finding {finding.id}")
    return {"text": clip("\n".join(lines), MAX_TEXT_ONLY)}


def _header(finding: Finding) -> HeaderBlock:
    emoji = OUTCOME_STYLES[finding.outcome].emoji
    return HeaderBlock(text=PlainTextObject(text=clip(f"{emoji} {headline(finding)}", MAX_HEADER_TEXT), emoji=True))


def _fields(finding: Finding) -> list[MarkdownTextObject]:
    fields = []
    for label, value in where_fields(finding)[:MAX_FIELDS]:
        fields.append(_mrkdwn(f"*{label}*\n{_code(clip(value, MAX_FIELD_VALUE))}", MAX_FIELD_TEXT))
    return fields


def _change_text(summary: ChangeSummary) -> str:
    head = f"• *{escape(summary.verb)}* {escape(summary.kind)} {_code(summary.name)}  _{escape(summary.action)}_"
    details = list(summary.details[:MAX_DETAIL_LINES])
    if len(summary.details) > MAX_DETAIL_LINES:
        details.append(f"… {len(summary.details) - MAX_DETAIL_LINES} more fields")
    body = "".join(f"\n      {escape(line)}" for line in details)
    return clip(head + body, MAX_CHANGE_TEXT)


def _change_blocks(finding: Finding) -> list[Block]:
    changes = finding.changes
    if not changes:
        return [SectionBlock(text=_mrkdwn("*Changes:* none"))]
    title = f"*Changes ({len(changes)})*"
    if len(changes) > MAX_CHANGES_SHOWN:
        title += f"  {escape(change_counts(changes))}"
    blocks: list[Block] = [SectionBlock(text=_mrkdwn(title))]

    # Pack the shown changes into as few sections as fit Slack's section limit.
    chunk = ""
    for change in changes[:MAX_CHANGES_SHOWN]:
        text = _change_text(summarise_change(change, planned=finding.outcome is Outcome.PLANNED))
        if chunk and len(chunk) + 1 + len(text) > MAX_SECTION_TEXT:
            blocks.append(SectionBlock(text=_mrkdwn(chunk)))
            chunk = ""
        chunk = f"{chunk}\n{text}" if chunk else text
    if chunk:
        blocks.append(SectionBlock(text=_mrkdwn(chunk)))

    hidden = len(changes) - MAX_CHANGES_SHOWN
    if hidden > 0:
        more = f"… and {hidden} more change{'s' if hidden != 1 else ''} (all of them are in the finding, id {_code(finding.id)})"
        blocks.append(ContextBlock(elements=[_mrkdwn(more)]))
    return blocks


def _links_text(links: tuple[Link, ...]) -> str:
    text = "*Console:*"
    for index, link in enumerate(links):
        label = escape(link.label).replace("|", "/")
        piece = f" <{link.url}|{label}>" if index == 0 else f" · <{link.url}|{label}>"
        if len(text) + len(piece) > MAX_SECTION_TEXT:
            break  # a cut URL is a broken link: leave the rest out rather than clip
        text += piece
    return text


def _footer(finding: Finding) -> str:
    parts = [f"finding {_code(finding.id)}", escape(finding.severity), escape(finding.time)]
    if finding.trigger.insertId:
        parts.append(f"audit entry {_code(finding.trigger.insertId)}")
    return " · ".join(parts)
